"""S3 upload throughput against SeaweedFS along three paths into the same bucket, the same bytes
each time, in the same run:

- `ceiling`: no service in between. aiobotocore, with the service's client settings, sends the
  upload as 5 MiB parts sliced before the clock starts, CreateMultipartUpload to
  CompleteMultipartUpload: no uploader can send these bytes to this S3 faster through any service.
- `service`: tus through `video-upload serve` (SQLite, `STORAGE_BACKEND=s3`, 5 MiB parts); the last
  PATCH completes the multipart upload, so the time runs from the creation to the object.
- `direct`: `/api/v1/videos/direct/s3/multipart`: the service creates the multipart upload and
  signs each part, the client PUTs the parts straight to SeaweedFS, the service completes. Parts
  are at least 5 MiB (S3's minimum), so it has no 1 MiB scenario.

The scenarios and interleaved rounds are `bench.throughput`'s (four concurrent uploads; a warm-up
round unless quick); every path sends an upload's parts one after the other, as tus must. A run
reports MB/s and CPU seconds per GiB of the service's process tree, of the benchmark process (the
uploading client: all the work of the ceiling) and of SeaweedFS, read at both ends of the run
only (sampling in between would cost the client's CPU). Over plain HTTP botocore signs every
part's payload (SHA-256), in the ceiling and the service alike; presigned URLs carry an unsigned
payload, so the direct path's client hashes nothing.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from bench.client import TusUser, expect, make_payload, pieces
from bench.seaweedfs import REGION, SeaweedFS
from bench.servers import Server, tree_usage
from bench.stats import MIB, paired
from bench.throughput import Run, Scenario, rounds, scenarios, summarise

PART_SIZE = 5 * MIB
DIRECT = "/api/v1/videos/direct/s3/multipart"
Cleanup = Callable[[], Awaitable[object]]


class Paths:
    """The three ways into the bucket: each uploads one body for one user, off the clock's
    set-up, and returns how to remove what it uploaded."""

    def __init__(self, s3: SeaweedFS, bucket: str, server: Server) -> None:
        self.s3, self.bucket, self.server = s3, bucket, server
        self.parts: list[bytes] = []  # the ceiling's, sliced once per scenario

    async def open(self, stack: AsyncExitStack) -> None:
        self.client = await stack.enter_async_context(self.server.client(connections=8))
        limits = httpx.Limits(max_connections=8)
        self.s3_http = await stack.enter_async_context(
            httpx.AsyncClient(timeout=300, trust_env=False, limits=limits)
        )
        config = AioConfig(  # the service's client settings
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=32,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            signature_version="s3v4",
        )
        self.botocore: Any = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=self.s3.endpoint,
                region_name=REGION,
                aws_access_key_id=self.s3.access_key,
                aws_secret_access_key=self.s3.secret_key,
                config=config,
            )
        )

    async def ceiling(self, user: TusUser, body: memoryview, chunk: int) -> Cleanup:
        key, bucket = f"ceiling/{secrets.token_hex(8)}", self.bucket
        created = await self.botocore.create_multipart_upload(Bucket=bucket, Key=key)
        upload_id, done = created["UploadId"], []
        for number, part in enumerate(self.parts, 1):
            answer = await self.botocore.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=part
            )
            done.append({"PartNumber": number, "ETag": answer["ETag"]})
        await self.botocore.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
        )
        return functools.partial(self.botocore.delete_object, Bucket=bucket, Key=key)

    async def service(self, user: TusUser, body: memoryview, chunk: int) -> Cleanup:
        return functools.partial(user.delete, await user.upload(body, chunk))

    async def direct(self, user: TusUser, body: memoryview, chunk: int) -> Cleanup:
        """The service signs, the client PUTs each part to SeaweedFS, the service completes."""
        auth = {"Authorization": f"Bearer {user.token}"}
        metadata = {"session_id": user.session_id, "file_size": len(body), "duration_seconds": 60}
        request = {"filename": "take.mp4", "type": "video/mp4", "metadata": metadata}
        created = expect(await self.client.post(DIRECT, json=request, headers=auth), 201).json()
        upload_id, key, size = created["uploadId"], created["key"], created["partSize"]
        parts = []
        for number in range(1, created["partCount"] + 1):
            url = f"{DIRECT}/{upload_id}/{number}"
            signed = expect(await self.client.get(url, params={"key": key}, headers=auth), 200)
            piece = body[(number - 1) * size : number * size]
            headers = {"Content-Length": str(len(piece))}  # signed: no chunked encoding
            put = await self.s3_http.put(
                signed.json()["url"], content=pieces(piece), headers=headers
            )
            parts.append({"PartNumber": number, "ETag": expect(put, 200).headers["etag"]})
        complete = f"{DIRECT}/{upload_id}/complete"
        answer = await self.client.post(
            complete, params={"key": key}, json={"parts": parts}, headers=auth
        )
        expect(answer, 200)
        url = f"/api/v1/videos/upload/{upload_id}"
        return functools.partial(self.client.delete, url, headers=auth)

    async def once(self, name: str, scenario: Scenario, payload: memoryview) -> Run:
        """Upload the scenario's bytes once along path `name`; removed afterwards (not timed)."""
        upload = getattr(self, name)
        body = payload[: scenario.size]
        users = [await self.server.user(self.client) for _ in range(scenario.uploads)]
        service_cpu, s3_cpu = -tree_usage(self.server.pid)[0], -tree_usage(self.s3.pid)[0]
        client_cpu, started = -time.process_time(), time.perf_counter()
        cleanups = await asyncio.gather(*(upload(user, body, scenario.chunk) for user in users))
        elapsed = time.perf_counter() - started
        client_cpu += time.process_time()
        service_cpu += tree_usage(self.server.pid)[0]
        s3_cpu += tree_usage(self.s3.pid)[0]
        for cleanup in cleanups:
            await cleanup()
        cpu = {"service": None if name == "ceiling" else service_cpu, "client": client_cpu}
        return Run(elapsed, scenario.uploads * scenario.size, {**cpu, "s3": s3_cpu})


async def measure(
    s3: SeaweedFS,
    server: Server,
    bucket: str,
    quick: bool,
    runs: int,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every scenario along every path, `runs` rounds (after a warm-up one unless `quick`);
    `server` is the service, storing into `bucket` of `s3` with no proxy in between."""
    sizes = (10 * MIB, 4, 5 * MIB) if quick else (200 * MIB, 4, 50 * MIB)
    chosen = scenarios(sizes[0], "concurrent_4", *sizes[1:])
    payload = make_payload(max(s.size for s in chosen))
    section: dict[str, Any] = {"part_size_mib": PART_SIZE / MIB}
    async with AsyncExitStack() as stack:
        paths = Paths(s3, bucket, server)
        await paths.open(stack)
        for scenario in chosen:
            body = payload[: scenario.size]
            paths.parts = [bytes(body[i : i + PART_SIZE]) for i in range(0, len(body), PART_SIZE)]
            # direct parts are whole parts: no 1 MiB scenario for them
            names = ["ceiling", "service"] + ["direct"] * (scenario.chunk >= PART_SIZE)
            once = {name: functools.partial(paths.once, name, scenario, payload) for name in names}
            collected = await rounds(scenario, once, runs, not quick, log)
            targets = {name: summarise(done) for name, done in collected.items()}
            entry: dict[str, Any] = {"label": scenario.label, "targets": targets}
            for name in names[1:]:  # the ratios to the ceiling (of the medians, round by round)
                mb_per_s = {n: [run.mb_per_s for run in collected[n]] for n in (name, "ceiling")}
                entry[f"ratio_{name}_vs_ceiling"] = (
                    targets[name]["mb_per_s"] / targets["ceiling"]["mb_per_s"]
                )
                entry[f"paired_{name}_vs_ceiling"] = paired(mb_per_s[name], mb_per_s["ceiling"])
            section[scenario.key] = entry
    return section
