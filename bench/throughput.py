"""Upload throughput: the service against the raw sink, same client, same bytes.

Scenarios: one upload in 5 MiB PATCHes, one in 1 MiB PATCHes, and several concurrent uploads in
5 MiB PATCHes. For each, every target (raw sink, raw sink with an fsync per PATCH, raw sink flushed
like the local store's default, the service on SQLite and on
PostgreSQL, and with `--variant-pythonpath` a changed copy of the service) runs in turn,
`runs` times, interleaved so that drift on the machine hits all targets alike, after one round
that is not counted (it warms each server up: its first upload pays for fresh memory and caches).
A run reports MB/s (10^6 bytes per second, creation to last PATCH answered), the server's CPU
seconds per GiB received and the peak RSS of its process tree.

Each run also times, as the client sees them, the creation and every PATCH: for a single upload
the report splits the service's extra wall time over the sink's into the creation, the PATCHes
that do not complete the upload and the one that does (`wall_time_split`).

Besides the ratio of the medians, each round gives a paired ratio (the service's run over the
sink's run of the same round, minutes apart at most): their spread shows how far the machine's
drift, not the code, moves the ratio.

Every round also times the disk alone (`bench.disk`): the scenario's bytes written and flushed
the local store's way by the benchmark process itself, with no server, after the round's servers.
At the same moment no server that keeps its bytes could beat it, so over the rounds its ratio to
the raw sink is the most the disk allows such a server (one reading can catch the disk still
busy with the servers' writes).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.client import UploadTimings
from bench.disk import durable_mb_per_s
from bench.procs import Monitor
from bench.stats import GIB, MB, MIB, median
from bench.targets import Target


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    uploads: int
    size: int
    chunk: int

    @property
    def total(self) -> int:
        return self.uploads * self.size


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
    """`size` bytes (a random MiB repeated) to slice bodies from without copying."""
    import os

    block = os.urandom(MIB)
    return memoryview(block * (size // MIB) + block[: size % MIB])


@dataclass
class RunResult:
    seconds: float
    total_bytes: int
    cpu_seconds: float
    rss_start: int
    rss_peak: int
    # wall time as the client saw it (medians over the run's uploads): the creation, a PATCH
    # that does not complete its upload, and the one that does
    create_s: float = math.nan
    patch_s: float = math.nan
    last_patch_s: float = math.nan
    patches: int = 0

    @property
    def mb_per_s(self) -> float:
        return self.total_bytes / self.seconds / MB

    @property
    def cpu_s_per_gib(self) -> float:
        return self.cpu_seconds / (self.total_bytes / GIB)


async def run_once(target: Target, scenario: Scenario, payload: memoryview) -> RunResult:
    """Upload the scenario's bytes once; the uploads are deleted afterwards (not timed)."""
    async with target.client(connections=scenario.uploads + 2) as client:
        users = [await target.user(client) for _ in range(scenario.uploads)]
        body = payload[: scenario.size]
        timings = [UploadTimings() for _ in users]
        with Monitor(target.pid) as usage:
            started = time.perf_counter()
            urls = await asyncio.gather(
                *(
                    user.upload(body, scenario.chunk, timing)
                    for user, timing in zip(users, timings, strict=True)
                )
            )
            elapsed = time.perf_counter() - started
        for user, url in zip(users, urls, strict=True):
            await user.delete(url)
    return RunResult(
        elapsed,
        scenario.total,
        usage.cpu_seconds,
        usage.rss_start,
        usage.rss_peak,
        create_s=median([t.create for t in timings]),
        patch_s=median([p for t in timings for p in t.patches[:-1]]),
        last_patch_s=median([t.patches[-1] for t in timings]),
        patches=len(timings[0].patches),
    )


def summarise(results: list[RunResult]) -> dict[str, Any]:
    return {
        "mb_per_s": median([r.mb_per_s for r in results]),
        "cpu_s_per_gib": median([r.cpu_s_per_gib for r in results]),
        "rss_peak_mib": max(r.rss_peak for r in results) / MIB,
        "rss_start_mib": min(r.rss_start for r in results) / MIB,
        "seconds": median([r.seconds for r in results]),
        "create_ms": median([r.create_s for r in results]) * 1000,
        "patch_ms": median([r.patch_s for r in results]) * 1000,
        "last_patch_ms": median([r.last_patch_s for r in results]) * 1000,
        "patches": results[0].patches if results else 0,
        "runs": [
            {**asdict(r), "mb_per_s": r.mb_per_s, "cpu_s_per_gib": r.cpu_s_per_gib} for r in results
        ],
    }


def wall_time_split(service: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float]:
    """Where the service's extra wall time per upload goes, in ms, against `baseline` (two
    `summarise` results of a one-upload scenario): the creation, the PATCHes that do not
    complete the upload (their median difference times their number), the completing PATCH,
    and what the medians leave unexplained."""
    total = (service["seconds"] - baseline["seconds"]) * 1000
    parts = {
        "create_ms": service["create_ms"] - baseline["create_ms"],
        "patches_ms": (service["patch_ms"] - baseline["patch_ms"]) * (service["patches"] - 1),
        "last_patch_ms": service["last_patch_ms"] - baseline["last_patch_ms"],
    }
    return {"total_ms": total, **parts, "rest_ms": total - sum(parts.values())}


def paired_ratios(service: list[RunResult], sink: list[RunResult]) -> list[float]:
    """Service MB/s over sink MB/s (or any two targets'), round by round, sorted."""
    return sorted(a.mb_per_s / b.mb_per_s for a, b in zip(service, sink, strict=True))


async def measure(
    targets: list[Target], quick: bool, runs: int, log: Any = print
) -> dict[str, Any]:
    """Every scenario on every target, `runs` times each; medians and service/sink ratios."""
    chosen = scenarios(quick)
    payload = make_payload(max(s.size for s in chosen))
    section: dict[str, Any] = {}
    for scenario in chosen:
        collected: dict[str, list[RunResult]] = {target.name: [] for target in targets}
        disk: list[float] = []
        body = payload[: scenario.size]
        for target in targets:  # the warm-up round, not counted
            await run_once(target, scenario, payload)
        for attempt in range(runs):
            for target in targets:
                result = await run_once(target, scenario, payload)
                collected[target.name].append(result)
                log(
                    f"  {scenario.label:<32} {target.name:<11} run {attempt + 1}/{runs}: "
                    f"{result.mb_per_s:7.1f} MB/s  {result.cpu_s_per_gib:5.2f} CPU s/GiB  "
                    f"peak RSS {result.rss_peak / MIB:6.1f} MiB"
                )
            disk.append(durable_mb_per_s(body, files=scenario.uploads, chunk=scenario.chunk))
            log(
                f"  {scenario.label:<32} {'disk alone':<11} run {attempt + 1}/{runs}: "
                f"{disk[-1]:7.1f} MB/s"
            )
        summary = {name: summarise(results) for name, results in collected.items()}
        entry: dict[str, Any] = {
            "label": scenario.label,
            "uploads": scenario.uploads,
            "size_mib": scenario.size / MIB,
            "chunk_mib": scenario.chunk / MIB,
            "targets": summary,
        }
        if "service" in summary and "sink" in summary:
            entry["ratio_vs_sink"] = summary["service"]["mb_per_s"] / summary["sink"]["mb_per_s"]
            entry["paired_ratios_vs_sink"] = paired_ratios(collected["service"], collected["sink"])
        if disk:
            entry["disk"] = {"mb_per_s": median(disk), "runs_mb_per_s": disk}
        if disk and "sink" in summary:
            sink_runs = [run.mb_per_s for run in collected["sink"]]
            entry["ratio_disk_vs_sink"] = median(disk) / summary["sink"]["mb_per_s"]
            entry["paired_disk_vs_sink"] = sorted(
                a / b for a, b in zip(disk, sink_runs, strict=True)
            )
        if "service" in summary and "sink_fsync" in summary:
            entry["ratio_vs_sink_fsync"] = (
                summary["service"]["mb_per_s"] / summary["sink_fsync"]["mb_per_s"]
            )
        if "service" in summary and "sink_durable" in summary:
            entry["ratio_vs_sink_durable"] = (
                summary["service"]["mb_per_s"] / summary["sink_durable"]["mb_per_s"]
            )
        if "service_variant" in summary and "service" in summary:
            variant, baseline = collected["service_variant"], collected["service"]
            entry["ratio_variant_vs_sink"] = (
                summary["service_variant"]["mb_per_s"] / summary["sink"]["mb_per_s"]
            )
            entry["paired_variant_vs_service"] = paired_ratios(variant, baseline)
        if scenario.uploads == 1 and "service" in summary:
            entry["wall_time_split"] = {
                baseline: wall_time_split(summary["service"], summary[baseline])
                for baseline in ("sink", "sink_durable")
                if baseline in summary
            }
        if "service_postgres" in summary and "sink" in summary:
            entry["ratio_postgres_vs_sink"] = (
                summary["service_postgres"]["mb_per_s"] / summary["sink"]["mb_per_s"]
            )
        section[scenario.key] = entry
    return section
