"""HEAD and creation latency, one request at a time over one kept-alive connection.

For each database (SQLite, and PostgreSQL at 127.0.0.1:5432 in a throwaway database) a fresh
service answers `requests` HEADs of one upload and `requests` tus creations (POST), after a short
warm-up. The raw sink answers the same requests too: its numbers are the floor set by the client,
the loopback and uvicorn, which no service can go below.

The requests are timed through `bench.rawhttp`, a client that only writes prepared bytes and
reads the response, so that the time is the server's and the loopback's: through httpx, the
client alone was about 1.2 ms of a HEAD that cost the server 0.1 to 0.4 ms (tenth session). The
user and its practice session are still made through httpx, untimed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bench import pg
from bench.client import TUS_PATH, tus_metadata
from bench.rawhttp import RawConnection, RawResponse
from bench.stats import latency_summary
from bench.targets import Target, service, sink

WARMUP = 50


def _timed(call: Callable[[], RawResponse], expected: int, count: int) -> list[float]:
    for _ in range(WARMUP):
        _check(call(), expected)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = call()
        samples.append(time.perf_counter() - started)
        _check(response, expected)
    return samples


def _check(response: RawResponse, expected: int) -> None:
    if response.status != expected:
        raise RuntimeError(f"expected {expected}, got {response.status}: {response.body[:300]!r}")


def _time_requests(
    base_url: str, headers: dict[str, str], metadata: str, url: str, requests: int
) -> dict[str, Any]:
    with RawConnection(base_url) as connection:
        head = connection.prepare("HEAD", url, headers)
        # one request serves every creation: each makes a new upload of the same session
        create = connection.prepare(
            "POST",
            TUS_PATH,
            {
                **headers,
                "Upload-Length": "1024",
                "Upload-Metadata": metadata,
                "Content-Length": "0",
            },
        )
        head_samples = _timed(lambda: connection.send(head, head=True), 200, requests)
        create_samples = _timed(lambda: connection.send(create), 201, requests)
    return {"head": latency_summary(head_samples), "create": latency_summary(create_samples)}


async def measure_target(target: Target, requests: int) -> dict[str, Any]:
    async with target.client(connections=1) as client:
        user = await target.user(client)
        url = await user.create(1024)
    metadata = tus_metadata(session_id=user.session_id, filename="latency.mp4")
    return await asyncio.to_thread(
        _time_requests, target.base_url, user.headers, metadata, url, requests
    )


async def measure(requests: int, log: Any = print) -> dict[str, Any]:
    results: dict[str, Any] = {"requests": requests}
    with sink() as raw:
        results["sink"] = await measure_target(raw, requests)
    for database in ("sqlite", "postgres"):
        reason = pg.unavailable() if database == "postgres" else None
        if reason:
            results[database] = {"skipped": reason}
            continue
        with service(f"service_{database}", database=database) as target:
            results[database] = await measure_target(target, requests)
    for name in ("sink", "sqlite", "postgres"):
        entry = results[name]
        if "skipped" in entry:
            log(f"  {name:<9} skipped: {entry['skipped']}")
            continue
        log(
            f"  {name:<9} HEAD p50 {entry['head']['p50_ms']:.2f} ms p99 "
            f"{entry['head']['p99_ms']:.2f} ms | create p50 {entry['create']['p50_ms']:.2f} ms "
            f"p99 {entry['create']['p99_ms']:.2f} ms"
        )
    return results
