"""HEAD and creation latency, one request at a time over one kept-alive connection.

For each database (SQLite, and PostgreSQL at 127.0.0.1:5432 in a throwaway database) a fresh
service answers `requests` HEADs of one upload and `requests` tus creations (POST), after a short
warm-up. The raw sink answers the same requests too: its numbers are the floor set by the client,
the loopback and uvicorn, which no service can go below.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench import pg
from bench.stats import latency_summary
from bench.targets import Target, service, sink

WARMUP = 50


async def _timed(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    for _ in range(WARMUP):
        await call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


async def measure_target(target: Target, requests: int) -> dict[str, Any]:
    async with target.client(connections=1) as client:
        user = await target.user(client)
        url = await user.create(1024)
        head = await _timed(lambda: user.head(url), requests)
        create = await _timed(lambda: user.create(1024), requests)
    return {"head": latency_summary(head), "create": latency_summary(create)}


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
