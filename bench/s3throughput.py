"""S3 upload throughput against SeaweedFS: the service's tus path, its direct path, and the
ceiling, the same bytes each time, in the same run.

Paths, each uploading the scenario's bytes into the same bucket of the same SeaweedFS:

- `ceiling`: no service in between. aiobotocore (the service's own S3 client library, with the
  service's client settings) sends the upload as 5 MiB parts, CreateMultipartUpload to
  CompleteMultipartUpload, from parts sliced before the clock starts. No uploader can send these
  bytes to this S3 faster through any service.
- `service`: tus through `video-upload serve` (SQLite, `STORAGE_BACKEND=s3`, 5 MiB parts), the
  client of the throughput section; the last PATCH completes the multipart upload, so the time
  runs from the creation to the object.
- `direct`: the service's direct-upload routes (`/api/v1/videos/direct/s3/multipart`): the
  service creates the multipart upload and signs each part, the client PUTs the parts straight
  to SeaweedFS (httpx), the service completes. Parts are at least 5 MiB (S3's minimum), so
  there is no 1 MiB scenario for it.

Scenarios: one upload in 5 MiB PATCHes, one in 1 MiB PATCHes, four concurrent uploads in 5 MiB
PATCHes. Every path sends its parts one after the other within an upload (as tus must). Rounds
are interleaved, path by path, after a warm-up round (none in a quick run). A run reports MB/s
(10^6 B/s), and CPU seconds per GiB of the service's process tree, of the benchmark process
(the uploading client: all the work of the ceiling) and of SeaweedFS.

On plain HTTP botocore signs every part's payload (SHA-256), in the ceiling and in the service
alike; presigned URLs carry an unsigned payload, so the direct path's client hashes nothing.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Protocol, cast

import httpx
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from bench import seaweedfs
from bench.client import TusUser
from bench.servers import Server, tree_cpu_seconds
from bench.stats import GIB, MB, MIB, median
from bench.throughput import make_payload, paired

PART_SIZE = 5 * MIB
PATHS = ("ceiling", "service", "direct")


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    uploads: int
    size: int
    chunk: int


def scenarios(quick: bool) -> list[Scenario]:
    single, each = (10 * MIB, 5 * MIB) if quick else (200 * MIB, 50 * MIB)
    return [
        Scenario("single_5mib", f"1 x {single // MIB} MiB, 5 MiB PATCHes", 1, single, 5 * MIB),
        Scenario("single_1mib", f"1 x {single // MIB} MiB, 1 MiB PATCHes", 1, single, MIB),
        Scenario("concurrent_4", f"4 x {each // MIB} MiB concurrent, 5 MiB", 4, each, 5 * MIB),
    ]


@dataclass(frozen=True)
class Run:
    seconds: float
    total_bytes: int
    service_cpu: float | None
    client_cpu: float
    s3_cpu: float

    @property
    def mb_per_s(self) -> float:
        return self.total_bytes / self.seconds / MB

    def per_gib(self, seconds: float | None) -> float | None:
        return None if seconds is None else seconds / (self.total_bytes / GIB)


class UploadPath(Protocol):
    name: str

    async def prepare(self, scenario: Scenario, body: memoryview) -> list[Any]:
        """What each upload needs before the clock starts (a user, a key)."""
        ...

    async def upload(self, prepared: Any, body: memoryview, chunk: int) -> Any: ...

    async def clean(self, prepared: Any, uploaded: Any) -> None: ...


class Ceiling:
    """aiobotocore straight to SeaweedFS, configured as the service configures its client."""

    name = "ceiling"

    def __init__(self, s3: seaweedfs.SeaweedFS, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket
        self.client: Any = None
        self.parts: list[bytes] = []

    async def open(self, stack: AsyncExitStack) -> None:
        config = AioConfig(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=32,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            signature_version="s3v4",
        )
        self.client = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=self.s3.endpoint,
                region_name=seaweedfs.REGION,
                aws_access_key_id=seaweedfs.ACCESS_KEY,
                aws_secret_access_key=seaweedfs.SECRET_KEY,
                config=config,
            )
        )

    async def prepare(self, scenario: Scenario, body: memoryview) -> list[Any]:
        if sum(map(len, self.parts)) != len(body):  # sliced once per scenario, off the clock
            self.parts = [bytes(body[i : i + PART_SIZE]) for i in range(0, len(body), PART_SIZE)]
        return [f"ceiling/{secrets.token_hex(8)}" for _ in range(scenario.uploads)]

    async def upload(self, prepared: Any, body: memoryview, chunk: int) -> Any:
        key = cast(str, prepared)
        created = await self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
        upload_id = created["UploadId"]
        done = []
        for number, part in enumerate(self.parts, 1):
            answer = await self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=part
            )
            done.append({"PartNumber": number, "ETag": answer["ETag"]})
        await self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
        )
        return key

    async def clean(self, prepared: Any, uploaded: Any) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=uploaded)


class ServicePath:
    """tus PATCHes through the service."""

    name = "service"

    def __init__(self, server: Server, client: httpx.AsyncClient) -> None:
        self.server, self.client = server, client

    async def prepare(self, scenario: Scenario, body: memoryview) -> list[Any]:
        return [await self.server.user(self.client) for _ in range(scenario.uploads)]

    async def upload(self, prepared: Any, body: memoryview, chunk: int) -> Any:
        return await cast(TusUser, prepared).upload(body, chunk)

    async def clean(self, prepared: Any, uploaded: Any) -> None:
        await cast(TusUser, prepared).delete(uploaded)


DIRECT = "/api/v1/videos/direct/s3/multipart"


class Direct:
    """The service signs, the client PUTs each part to SeaweedFS, the service completes."""

    name = "direct"

    def __init__(self, server: Server, client: httpx.AsyncClient, s3: httpx.AsyncClient) -> None:
        self.server, self.client, self.s3 = server, client, s3

    async def prepare(self, scenario: Scenario, body: memoryview) -> list[Any]:
        return [await self.server.user(self.client) for _ in range(scenario.uploads)]

    async def upload(self, prepared: Any, body: memoryview, chunk: int) -> Any:
        user = cast(TusUser, prepared)
        auth = {"Authorization": f"Bearer {user.token}"}
        metadata = {"session_id": user.session_id, "file_size": len(body), "duration_seconds": 60}
        request = {"filename": "take.mp4", "type": "video/mp4", "metadata": metadata}
        created = _ok(await self.client.post(DIRECT, json=request, headers=auth), 201)
        upload_id, key, size = created["uploadId"], created["key"], created["partSize"]
        parts = []
        for number in range(1, created["partCount"] + 1):
            url = f"{DIRECT}/{upload_id}/{number}"
            signed = _ok(await self.client.get(url, params={"key": key}, headers=auth), 200)
            piece = body[(number - 1) * size : number * size]
            headers = {"Content-Length": str(len(piece))}  # signed: no chunked encoding
            put = await self.s3.put(signed["url"], content=_whole(piece), headers=headers)
            if put.status_code != 200:
                raise RuntimeError(f"PUT of part {number}: {put.status_code} {put.text[:300]}")
            parts.append({"PartNumber": number, "ETag": put.headers["etag"]})
        complete = f"{DIRECT}/{upload_id}/complete"
        answer = await self.client.post(
            complete, params={"key": key}, json={"parts": parts}, headers=auth
        )
        _ok(answer, 200)
        return upload_id

    async def clean(self, prepared: Any, uploaded: Any) -> None:
        user = cast(TusUser, prepared)
        url = f"/api/v1/videos/upload/{uploaded}"
        await self.client.delete(url, headers={"Authorization": f"Bearer {user.token}"})


async def _whole(view: memoryview) -> AsyncIterator[bytes]:
    # httpx writes any buffer it is given: a memoryview saves copying the part
    yield cast(bytes, view)


def _ok(response: httpx.Response, status: int) -> Any:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: expected {status}, "
            f"got {response.status_code}: {response.text[:300]}"
        )
    return response.json()


async def run_once(
    path: UploadPath, scenario: Scenario, payload: memoryview, service_pid: int, s3_pid: int
) -> Run:
    """Upload the scenario's bytes once along `path`; removed afterwards (not timed)."""
    body = payload[: scenario.size]
    prepared = await path.prepare(scenario, body)
    # CPU times read at both ends only: sampling in between would cost the client's CPU
    service_cpu, s3_cpu = -tree_cpu_seconds(service_pid), -tree_cpu_seconds(s3_pid)
    client_cpu, started = -time.process_time(), time.perf_counter()
    uploaded = await asyncio.gather(*(path.upload(each, body, scenario.chunk) for each in prepared))
    elapsed = time.perf_counter() - started
    client_cpu += time.process_time()
    service_cpu += tree_cpu_seconds(service_pid)
    s3_cpu += tree_cpu_seconds(s3_pid)
    for each, done in zip(prepared, uploaded, strict=True):
        await path.clean(each, done)
    total = scenario.uploads * scenario.size
    return Run(elapsed, total, None if path.name == "ceiling" else service_cpu, client_cpu, s3_cpu)


def _line(run: Run) -> str:
    cpu = [run.per_gib(seconds) for seconds in (run.service_cpu, run.client_cpu, run.s3_cpu)]
    service, client, s3 = ("-" if value is None else f"{value:.2f}" for value in cpu)
    return f"{run.mb_per_s:7.1f} MB/s, CPU s/GiB: service {service}, client {client}, S3 {s3}"


def summarise(runs: list[Run]) -> dict[str, Any]:
    def cpu(pick: Callable[[Run], float | None]) -> float | None:
        values = [value for value in map(pick, runs) if value is not None]
        return median(values) if values else None

    return {
        "mb_per_s": median([r.mb_per_s for r in runs]),
        "service_cpu_s_per_gib": cpu(lambda r: r.per_gib(r.service_cpu)),
        "client_cpu_s_per_gib": cpu(lambda r: r.per_gib(r.client_cpu)),
        "s3_cpu_s_per_gib": cpu(lambda r: r.per_gib(r.s3_cpu)),
        "runs_mb_per_s": [r.mb_per_s for r in runs],
    }


def compare(entry: dict[str, Any]) -> None:
    """The ratios to the ceiling (of the medians, and round by round)."""
    targets = entry["targets"]
    ceiling = targets["ceiling"]
    for name in ("service", "direct"):
        if name in targets:
            entry[f"ratio_{name}_vs_ceiling"] = targets[name]["mb_per_s"] / ceiling["mb_per_s"]
            rounds = paired(targets[name]["runs_mb_per_s"], ceiling["runs_mb_per_s"])
            entry[f"paired_{name}_vs_ceiling"] = rounds


async def measure(
    s3: seaweedfs.SeaweedFS,
    server: Server,
    bucket: str,
    quick: bool,
    runs: int,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every scenario along every path, `runs` rounds (after a warm-up one unless `quick`);
    `server` is the service, storing into `bucket` of `s3` with no proxy in between."""
    chosen = scenarios(quick)
    payload = make_payload(max(s.size for s in chosen))
    section: dict[str, Any] = {"part_size_mib": PART_SIZE / MIB}
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(server.client(connections=8))
        s3_http = await stack.enter_async_context(
            httpx.AsyncClient(timeout=300, trust_env=False, limits=httpx.Limits(max_connections=8))
        )
        ceiling = Ceiling(s3, bucket)
        await ceiling.open(stack)
        everything: list[UploadPath] = [
            ceiling,
            ServicePath(server, client),
            Direct(server, client, s3_http),
        ]
        for scenario in chosen:
            # direct parts are whole parts: no 1 MiB scenario for them
            paths = [p for p in everything if p.name != "direct" or scenario.chunk >= PART_SIZE]
            collected: dict[str, list[Run]] = {path.name: [] for path in paths}
            for path in paths if not quick else []:  # the warm-up round
                await run_once(path, scenario, payload, server.pid, s3.pid)
            for attempt in range(1, runs + 1):
                for path in paths:
                    run = await run_once(path, scenario, payload, server.pid, s3.pid)
                    collected[path.name].append(run)
                    log(f"  {scenario.label:<30} {path.name:<8} run {attempt}/{runs}: {_line(run)}")
            entry: dict[str, Any] = {
                "label": scenario.label,
                "targets": {name: summarise(done) for name, done in collected.items()},
            }
            compare(entry)
            section[scenario.key] = entry
    return section
