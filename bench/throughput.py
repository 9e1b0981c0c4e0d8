"""Upload throughput: the service against the raw sink, the same client sending the same bytes.

Scenarios: one upload in 5 MiB PATCHes, one in 1 MiB PATCHes, eight concurrent uploads in 5 MiB
PATCHes. Every target (the raw sink; the sink with an fsync per PATCH; the sink flushed like the
local store's default; the service on SQLite, and on PostgreSQL when it answers) runs in turn,
`runs` times, interleaved so that the machine's drift hits every target alike, after one round
that is not counted (it warms each server up). A run reports MB/s (10^6 B/s, from the creation to
the last PATCH's answer), the server's CPU seconds per GiB and the peak RSS of its process tree.
Each round also times the disk alone (`bench.disk`).

Besides the ratio of the medians, the ratio round by round (the service's run over the sink's
run of the same round) shows how far the machine, not the code, moves it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.disk import durable_mb_per_s
from bench.servers import Monitor, Server
from bench.stats import GIB, MB, MIB, median


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    uploads: int
    size: int
    chunk: int


def scenarios(quick: bool) -> list[Scenario]:
    if quick:
        return [
            Scenario("single_5mib", "1 x 32 MiB, 5 MiB PATCHes", 1, 32 * MIB, 5 * MIB),
            Scenario("single_1mib", "1 x 32 MiB, 1 MiB PATCHes", 1, 32 * MIB, 1 * MIB),
            Scenario("concurrent_8", "4 x 16 MiB concurrent, 5 MiB", 4, 16 * MIB, 5 * MIB),
        ]
    return [
        Scenario("single_5mib", "1 x 256 MiB, 5 MiB PATCHes", 1, 256 * MIB, 5 * MIB),
        Scenario("single_1mib", "1 x 256 MiB, 1 MiB PATCHes", 1, 256 * MIB, 1 * MIB),
        Scenario("concurrent_8", "8 x 64 MiB concurrent, 5 MiB", 8, 64 * MIB, 5 * MIB),
    ]


def make_payload(size: int) -> memoryview:
    """`size` bytes (a random MiB repeated), to slice bodies from without copying."""
    block = os.urandom(MIB)
    return memoryview(block * (size // MIB) + block[: size % MIB])


@dataclass(frozen=True)
class Run:
    seconds: float
    total_bytes: int
    cpu_seconds: float
    rss_start: int
    rss_peak: int

    @property
    def mb_per_s(self) -> float:
        return self.total_bytes / self.seconds / MB

    @property
    def cpu_s_per_gib(self) -> float:
        return self.cpu_seconds / (self.total_bytes / GIB)


async def run_once(target: Server, scenario: Scenario, payload: memoryview) -> Run:
    """Upload the scenario's bytes once; the uploads are deleted afterwards (not timed)."""
    async with target.client(connections=scenario.uploads + 2) as client:
        users = [await target.user(client) for _ in range(scenario.uploads)]
        body = payload[: scenario.size]
        with Monitor(target.pid) as usage:
            started = time.perf_counter()
            urls = await asyncio.gather(*(user.upload(body, scenario.chunk) for user in users))
            elapsed = time.perf_counter() - started
        for user, url in zip(users, urls, strict=True):
            await user.delete(url)
    total = scenario.uploads * scenario.size
    return Run(elapsed, total, usage.cpu_seconds, usage.rss_start, usage.rss_peak)


def summarise(runs: list[Run]) -> dict[str, Any]:
    return {
        "mb_per_s": median([r.mb_per_s for r in runs]),
        "cpu_s_per_gib": median([r.cpu_s_per_gib for r in runs]),
        "rss_start_mib": min(r.rss_start for r in runs) / MIB,
        "rss_peak_mib": max(r.rss_peak for r in runs) / MIB,
        "runs": [{"mb_per_s": r.mb_per_s, "cpu_s_per_gib": r.cpu_s_per_gib} for r in runs],
    }


def paired(these: list[float], those: list[float]) -> list[float]:
    """`these` over `those`, round by round, sorted."""
    return sorted(a / b for a, b in zip(these, those, strict=True))


def compare(entry: dict[str, Any], disk: list[float]) -> None:
    """Add to a scenario's `entry` the ratios the report and the checks read."""
    targets = entry["targets"]
    mb_per_s = {name: target["mb_per_s"] for name, target in targets.items()}
    rounds = {name: [run["mb_per_s"] for run in t["runs"]] for name, t in targets.items()}
    for name, key in (
        ("service", "ratio_vs_sink"),
        ("service_postgres", "ratio_postgres_vs_sink"),
    ):
        if name in targets:
            entry[key] = mb_per_s[name] / mb_per_s["sink"]
    if "service" in targets:
        entry["paired_ratios_vs_sink"] = paired(rounds["service"], rounds["sink"])
    if "service" in targets and "sink_durable" in targets:
        entry["ratio_vs_sink_durable"] = mb_per_s["service"] / mb_per_s["sink_durable"]
    if disk:
        entry["disk"] = {"mb_per_s": median(disk), "runs_mb_per_s": disk}
        entry["ratio_disk_vs_sink"] = median(disk) / mb_per_s["sink"]
        entry["paired_disk_vs_sink"] = paired(disk, rounds["sink"])


async def measure(
    targets: list[Server], quick: bool, runs: int, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every scenario on every target (the first must be the raw sink), `runs` times each."""
    chosen = scenarios(quick)
    payload = make_payload(max(s.size for s in chosen))
    section: dict[str, Any] = {}
    for scenario in chosen:
        collected: dict[str, list[Run]] = {target.name: [] for target in targets}
        disk: list[float] = []
        for target in targets:  # the warm-up round
            await run_once(target, scenario, payload)
        for attempt in range(1, runs + 1):
            for target in targets:
                run = await run_once(target, scenario, payload)
                collected[target.name].append(run)
                log(
                    f"  {scenario.label:<30} {target.name:<16} run {attempt}/{runs}: "
                    f"{run.mb_per_s:7.1f} MB/s {run.cpu_s_per_gib:5.2f} CPU s/GiB "
                    f"peak RSS {run.rss_peak / MIB:6.1f} MiB"
                )
            body = payload[: scenario.size]
            disk.append(durable_mb_per_s(body, files=scenario.uploads, chunk=scenario.chunk))
            log(f"  {scenario.label:<30} {'disk alone':<16} run {attempt}/{runs}: {disk[-1]:7.1f}")
        entry: dict[str, Any] = {
            "label": scenario.label,
            "targets": {name: summarise(done) for name, done in collected.items()},
        }
        compare(entry, disk)
        section[scenario.key] = entry
    return section
