"""S3 upload throughput against SeaweedFS along three paths into one bucket, interleaved: the
ceiling (aiobotocore straight to S3), the service's tus path and its direct path (presigned part
PUTs). docs/performance.md says what each path does and how to read the numbers."""

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

from bench.client import TusUser, expect, pieces
from bench.seaweedfs import SeaweedFS
from bench.servers import Server, service, tree_usage
from bench.stats import MIB
from bench.throughput import Run, Scenario, Targets, ratio, run_scenarios

PART_SIZE = 5 * MIB
DIRECT = "/api/v1/videos/direct/s3/multipart"
Cleanup = Callable[[], Awaitable[object]]


class Paths:
    """The three ways into the bucket: each uploads one body for one user and returns how to
    remove what it uploaded."""

    def __init__(self, s3: SeaweedFS, bucket: str, server: Server) -> None:
        self.s3, self.bucket, self.server = s3, bucket, server
        self.parts: list[bytes] = []  # the ceiling's, sliced once per scenario, off the clock

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
        client = get_session().create_client("s3", **self.s3.client_args, config=config)
        self.botocore: Any = await stack.enter_async_context(client)

    async def ceiling(self, user: TusUser, body: memoryview, chunk: int) -> Cleanup:
        key, bucket = f"ceiling/{secrets.token_hex(8)}", self.bucket
        created = await self.botocore.create_multipart_upload(Bucket=bucket, Key=key)
        upload = {"Bucket": bucket, "Key": key, "UploadId": created["UploadId"]}
        done = []
        for number, part in enumerate(self.parts, 1):
            answer = await self.botocore.upload_part(**upload, PartNumber=number, Body=part)
            done.append({"PartNumber": number, "ETag": answer["ETag"]})
        await self.botocore.complete_multipart_upload(**upload, MultipartUpload={"Parts": done})
        return functools.partial(self.botocore.delete_object, Bucket=bucket, Key=key)

    async def service(self, user: TusUser, body: memoryview, chunk: int) -> Cleanup:
        return functools.partial(user.delete, await user.upload(body, chunk))

    async def direct(self, user: TusUser, body: memoryview, chunk: int) -> Cleanup:
        """The service signs, the client PUTs each part to SeaweedFS, the service completes."""
        auth = {"Authorization": f"Bearer {user.token}"}
        metadata = {"session_id": user.session_id, "file_size": len(body), "duration_seconds": 60}
        request = {"filename": "take.mp4", "type": "video/mp4", "metadata": metadata}
        created = expect(await self.client.post(DIRECT, json=request, headers=auth), 201).json()
        upload_id, key, size = created["uploadId"], {"key": created["key"]}, created["partSize"]
        parts = []
        for number in range(1, created["partCount"] + 1):
            url = f"{DIRECT}/{upload_id}/{number}"
            signed = expect(await self.client.get(url, params=key, headers=auth), 200).json()
            piece = body[(number - 1) * size : number * size]
            headers = {"Content-Length": str(len(piece))}  # signed: no chunked encoding
            put = await self.s3_http.put(signed["url"], content=pieces(piece), headers=headers)
            parts.append({"PartNumber": number, "ETag": expect(put, 200).headers["etag"]})
        url, completion = f"{DIRECT}/{upload_id}/complete", {"parts": parts}
        expect(await self.client.post(url, params=key, json=completion, headers=auth), 200)
        url = f"/api/v1/videos/upload/{upload_id}"
        return functools.partial(self.client.delete, url, headers=auth)

    async def once(self, name: str, scenario: Scenario, payload: memoryview) -> Run:
        """Upload the scenario's bytes once along path `name`; removed afterwards (not timed).
        CPU time is read at both ends only: sampling in between would cost the client's."""
        upload = getattr(self, name)
        body = payload[: scenario.size]
        users = [await self.server.user(self.client) for _ in range(scenario.uploads)]
        server, s3 = self.server.pid, self.s3.process.pid
        service_cpu, s3_cpu = -tree_usage(server)[0], -tree_usage(s3)[0]
        client_cpu, started = -time.process_time(), time.perf_counter()
        cleanups = await asyncio.gather(*(upload(user, body, scenario.chunk) for user in users))
        elapsed = time.perf_counter() - started
        client_cpu += time.process_time()
        service_cpu, s3_cpu = service_cpu + tree_usage(server)[0], s3_cpu + tree_usage(s3)[0]
        for cleanup in cleanups:
            await cleanup()
        cpu = {"service": None if name == "ceiling" else service_cpu, "client": client_cpu}
        return Run(elapsed, scenario.uploads * scenario.size, {**cpu, "s3": s3_cpu})


async def measure(
    s3: SeaweedFS,
    quick: bool,
    runs: int,
    log: Callable[[str], None] = print,
    postgres: bool = False,
) -> dict[str, Any]:
    """Every scenario along every path (after a warm-up round unless `quick`), the service
    storing into a bucket of `s3` of its own with no proxy in between, its metadata (and the
    staged pieces) on SQLite, or on a throwaway PostgreSQL database with `postgres`."""
    bucket = f"bench-{secrets.token_hex(4)}"
    async with AsyncExitStack() as stack:
        env = s3.service_env(bucket, PART_SIZE)
        started = service("service_s3", postgres=postgres, extra_env=env)
        paths = Paths(s3, bucket, stack.enter_context(started))
        await paths.open(stack)

        def targets(scenario: Scenario, payload: memoryview) -> Targets:
            body = payload[: scenario.size]
            paths.parts = [bytes(body[i : i + PART_SIZE]) for i in range(0, len(body), PART_SIZE)]
            # parts are at least 5 MiB (S3's minimum): no 1 MiB scenario for the direct path
            names = ["ceiling", "service"] + ["direct"] * (scenario.chunk >= PART_SIZE)
            return {name: functools.partial(paths.once, name, scenario, payload) for name in names}

        sizes = (10 * MIB, 4, 5 * MIB) if quick else (200 * MIB, 4, 50 * MIB)
        section = await run_scenarios("concurrent_4", sizes, targets, runs, not quick, log)
    for entry in section.values():  # the ratios to the ceiling
        for name in [name for name in entry["targets"] if name != "ceiling"]:
            found = ratio(entry["targets"], name, "ceiling")
            entry[f"ratio_{name}_vs_ceiling"], entry[f"paired_{name}_vs_ceiling"] = found
    database = "postgres" if postgres else "sqlite"
    return {"part_size_mib": PART_SIZE / MIB, "database": database, **section}
