"""Many slow clients at once, each trickling one PATCH (16 KiB every 250 ms), on the raw sink and
the service on SQLite and PostgreSQL: how many complete, peak RSS, CPU (docs/performance.md)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

from bench.client import make_payload
from bench.servers import Monitor, Server, each_server
from bench.stats import MIB

PIECE = 16 * 1024
INTERVAL = 0.25


async def run_server(
    server: Server, clients: int, size: int, log: Callable[[str], None]
) -> dict[str, Any]:
    payload = make_payload(size)
    nominal = size / PIECE * INTERVAL
    deadline = nominal * 4 + 60
    async with server.client(connections=clients + 8) as client:
        user = await server.user(client)
        creating = asyncio.Semaphore(8)

        async def create() -> str:
            async with creating:
                return await user.create(size)

        urls = await asyncio.gather(*(create() for _ in range(clients)))

        async def trickle(url: str) -> str:
            """What went wrong, or "" when the upload completed."""
            try:
                sending = user.patch(url, 0, payload, piece=PIECE, interval=INTERVAL)
                offset = await asyncio.wait_for(sending, deadline)
            except TimeoutError:
                return f"no answer within the deadline of {deadline:.0f} s"
            except Exception as error:  # counted and reported, not raised
                return f"{type(error).__name__}: {error}"[:200]
            return "" if offset == size else f"offset {offset} != {size}"

        with Monitor(server.pid, interval=0.1) as usage:
            started = time.perf_counter()
            failures = [f for f in await asyncio.gather(*(trickle(u) for u in urls)) if f]
            elapsed = time.perf_counter() - started
    completed = clients - len(failures)
    distinct = list(dict.fromkeys(re.sub(r"[0-9a-f]{32}", "<id>", f) for f in failures))[:5]
    log(
        f"  {server.name:<16} {completed}/{clients} completed in {elapsed:.1f} s (nominal "
        f"{nominal:.0f} s), peak RSS {usage.rss_peak / MIB:.1f} MiB (start "
        f"{usage.rss_start / MIB:.1f}), CPU {usage.cpu_seconds:.1f} s"
    )
    for failure in distinct:
        log(f"    failure: {failure[:160]}")
    return {
        "clients": clients,
        "completed": completed,
        "failures": distinct,
        "seconds": elapsed,
        "nominal_seconds": nominal,
        "cpu_seconds": usage.cpu_seconds,
        "rss_start_mib": usage.rss_start / MIB,
        "rss_peak_mib": usage.rss_peak / MIB,
    }


async def measure(clients: int, size: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    keys = {"sink": "sink", "sqlite": "service_sqlite", "postgres": "service_postgres"}
    results = await each_server(keys, lambda server: run_server(server, clients, size, log), log)
    info = {"clients": clients, "size_kib": size // 1024, "piece_kib": PIECE // 1024}
    return {**info, "interval_s": INTERVAL, **results}
