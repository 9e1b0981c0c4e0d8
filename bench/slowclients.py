"""Many slow clients at once: each trickles its upload (16 KiB every 250 ms, about 64 KiB/s).

All uploads are created first; then every client sends its whole upload in one PATCH whose body
arrives piece by piece, all at the same time. Reported: how many completed with the right offset
(failures and their first messages), the server's peak RSS (sampled over the whole slow phase) and
CPU, for the raw sink and for the service on SQLite and on PostgreSQL. The phase has a deadline
(four times its nominal length plus a minute), so a service that stalls cannot hold up the run;
the servers are thrown away afterwards, so no upload is deleted.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import pg
from bench.procs import Monitor
from bench.stats import MIB, percentile
from bench.targets import Target, service, sink
from bench.throughput import make_payload

PIECE = 16 * 1024
INTERVAL = 0.25


async def run_target(target: Target, clients: int, size: int) -> dict[str, Any]:
    payload = make_payload(size)
    nominal = size / PIECE * INTERVAL
    deadline = nominal * 4 + 60
    async with target.client(connections=clients + 8) as client:
        user = await target.user(client)
        semaphore = asyncio.Semaphore(8)

        async def create() -> str:
            async with semaphore:
                return await user.create(size)

        urls = await asyncio.gather(*(create() for _ in range(clients)))
        durations: list[float] = []
        failures: list[str] = []

        async def trickle(url: str) -> None:
            started = time.perf_counter()
            try:
                offset = await asyncio.wait_for(
                    user.patch_slowly(url, 0, payload, PIECE, INTERVAL), deadline
                )
            except TimeoutError:
                failures.append(f"no answer within the deadline of {deadline:.0f} s")
                return
            except Exception as error:  # reported, not raised: the count is the result
                failures.append(f"{type(error).__name__}: {error}"[:200])
                return
            if offset != size:
                failures.append(f"offset {offset} != {size}")
                return
            durations.append(time.perf_counter() - started)

        with Monitor(target.pid, interval=0.1) as usage:
            started = time.perf_counter()
            await asyncio.gather(*(trickle(url) for url in urls))
            elapsed = time.perf_counter() - started
    series = usage.rss_series[:: max(1, len(usage.rss_series) // 200)]
    return {
        "clients": clients,
        "completed": len(durations),
        "failed": len(failures),
        "failures": _distinct(failures),
        "seconds": elapsed,
        "nominal_seconds": nominal,
        "upload_seconds_p50": percentile(durations, 0.5),
        "upload_seconds_max": max(durations, default=float("nan")),
        "cpu_seconds": usage.cpu_seconds,
        "rss_start_mib": usage.rss_start / MIB,
        "rss_peak_mib": usage.rss_peak / MIB,
        "rss_series_mib": [(t, rss / MIB) for t, rss in series],
    }


def _distinct(failures: list[str], limit: int = 5) -> list[str]:
    """The first few distinct failure messages (upload ids blanked out)."""
    import re

    seen: dict[str, None] = {}
    for failure in failures:
        seen.setdefault(re.sub(r"[0-9a-f]{32}", "<id>", failure), None)
    return list(seen)[:limit]


async def measure(clients: int, size: int, log: Any = print) -> dict[str, Any]:
    results: dict[str, Any] = {
        "clients": clients,
        "size_kib": size // 1024,
        "piece_kib": PIECE // 1024,
        "interval_s": INTERVAL,
    }
    with sink() as raw:
        results["sink"] = await run_target(raw, clients, size)
    _log(log, "sink", results["sink"])
    for database in ("sqlite", "postgres"):
        name = f"service_{database}"
        reason = pg.unavailable() if database == "postgres" else None
        if reason:
            results[name] = {"skipped": reason}
            log(f"  {name:<15} skipped: {reason}")
            continue
        with service(name, database=database) as target:
            results[name] = await run_target(target, clients, size)
        _log(log, name, results[name])
    return results


def _log(log: Any, name: str, entry: dict[str, Any]) -> None:
    log(
        f"  {name:<15} {entry['completed']}/{entry['clients']} completed in "
        f"{entry['seconds']:.1f} s (nominal {entry['nominal_seconds']:.0f} s), peak RSS "
        f"{entry['rss_peak_mib']:.1f} MiB (start {entry['rss_start_mib']:.1f}), "
        f"CPU {entry['cpu_seconds']:.1f} s"
    )
    for failure in entry["failures"]:
        log(f"    failure: {failure[:160]}")
