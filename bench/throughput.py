"""Upload throughput: the service against the raw sink, the same client sending the same bytes;
and the scenarios and interleaved rounds that `bench.s3throughput` runs too.

Scenarios: one upload in 5 MiB PATCHes, one in 1 MiB PATCHes, eight concurrent uploads in 5 MiB
PATCHes. Every target (the raw sink; the sink with an fsync per PATCH; the sink flushed like the
local store's default; the service on SQLite, and on PostgreSQL when it answers) runs `runs`
times, interleaved so that the machine's drift hits every target alike, after one uncounted round
that warms each server up. A run reports MB/s (10^6 B/s, from the creation to the last PATCH's
answer), the server's CPU seconds per GiB and the peak RSS of its process tree; besides the ratio
of the medians, the ratio round by round shows how far the machine, not the code, moves it.

Each round ends with the disk alone (`write_durably`): the bytes, already in memory, written the
way the local store writes them by default (PATCH-sized `os.write`s, writeback started after each,
one fsync per file at the end) with no HTTP, client or event loop. No server that keeps its bytes
so could be faster at that moment, so disk alone / raw sink is the highest service / raw sink
ratio the disk allows (the raw sink's bytes are still in the page cache when it answers). One
reading can catch the disk still busy with the round's servers: read it over the rounds.
"""

from __future__ import annotations

import asyncio
import functools
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.client import make_payload
from bench.servers import Monitor, Server
from bench.stats import GIB, MB, MIB, median, paired
from video_upload.storage.writeback import start_writeback

DISK = "disk alone"


@dataclass(frozen=True)
class Scenario:
    key: str
    uploads: int
    size: int
    chunk: int

    @property
    def label(self) -> str:
        if self.uploads == 1:
            return f"1 x {self.size // MIB} MiB, {self.chunk // MIB} MiB PATCHes"
        return f"{self.uploads} x {self.size // MIB} MiB concurrent, {self.chunk // MIB} MiB"


def scenarios(single: int, concurrent: str, uploads: int, each: int) -> list[Scenario]:
    """One upload of `single` bytes in 5 MiB PATCHes, one in 1 MiB PATCHes, and `uploads`
    concurrent uploads of `each` bytes in 5 MiB PATCHes (the scenario `concurrent`)."""
    return [
        Scenario("single_5mib", 1, single, 5 * MIB),
        Scenario("single_1mib", 1, single, MIB),
        Scenario(concurrent, uploads, each, 5 * MIB),
    ]


@dataclass(frozen=True)
class Run:
    """One round of one target: its time and bytes, CPU seconds by whose they are ("" for the
    server's; None where not measured), and the RSS of the server's process tree."""

    seconds: float
    total_bytes: int
    cpu: dict[str, float | None]
    rss_start: int = 0
    rss_peak: int = 0

    @property
    def mb_per_s(self) -> float:
        return self.total_bytes / self.seconds / MB

    def per_gib(self) -> dict[str, float | None]:
        gib = self.total_bytes / GIB
        return {
            f"{who}_cpu_s_per_gib".lstrip("_"): None if cpu is None else cpu / gib
            for who, cpu in self.cpu.items()
        }

    def __str__(self) -> str:
        cpu = [
            f"{key.removesuffix('cpu_s_per_gib').rstrip('_') or 'server'} {value:.2f}"
            for key, value in self.per_gib().items()
            if value is not None
        ]
        text = f"{self.mb_per_s:7.1f} MB/s" + (f", CPU s/GiB: {', '.join(cpu)}" if cpu else "")
        return text + (f", peak RSS {self.rss_peak / MIB:6.1f} MiB" if self.rss_peak else "")


def summarise(runs: list[Run]) -> dict[str, Any]:
    """The medians of MB/s and of CPU s/GiB, the RSS at the start and at the peak, each run."""
    per_gib = [run.per_gib() for run in runs]
    summary: dict[str, Any] = {"mb_per_s": median([run.mb_per_s for run in runs])}
    for key in per_gib[0]:
        values = [value for each in per_gib if (value := each[key]) is not None]
        summary[key] = median(values) if values else None
    if runs[0].rss_peak:
        summary["rss_start_mib"] = min(run.rss_start for run in runs) / MIB
        summary["rss_peak_mib"] = max(run.rss_peak for run in runs) / MIB
    summary["runs"] = [{"mb_per_s": r.mb_per_s, **p} for r, p in zip(runs, per_gib, strict=True)]
    return summary


async def rounds(
    scenario: Scenario,
    targets: Mapping[str, Callable[[], Awaitable[Run]]],
    runs: int,
    warm_up: bool,
    log: Callable[[str], None],
) -> dict[str, list[Run]]:
    """Each target once, not counted (when `warm_up`), then `runs` rounds of every target."""
    for once in targets.values() if warm_up else []:
        await once()
    collected: dict[str, list[Run]] = {name: [] for name in targets}
    for attempt in range(1, runs + 1):
        for name, once in targets.items():
            collected[name].append(run := await once())
            log(f"  {scenario.label:<30} {name:<16} run {attempt}/{runs}: {run}")
    return collected


def write_durably(directory: Path, payload: memoryview, *, files: int, chunk: int) -> float:
    """Seconds to write `payload` to `files` new files in `directory`, `chunk` bytes at a time
    (the files in turn, piece by piece), starting writeback after every piece and fsyncing each
    file at the end. The files are left in `directory`."""
    paths = [directory / f"disk-{index}" for index in range(files)]
    descriptors = [os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) for path in paths]
    try:
        started = time.perf_counter()
        for offset in range(0, len(payload), chunk):
            piece = payload[offset : offset + chunk]
            for fd in descriptors:
                rest = piece
                while rest:
                    rest = rest[os.write(fd, rest) :]
                start_writeback(fd, offset, len(piece))
        for fd in descriptors:
            os.fsync(fd)
        return time.perf_counter() - started
    finally:
        for fd in descriptors:
            os.close(fd)


async def disk_once(scenario: Scenario, payload: memoryview) -> Run:
    """`write_durably` in a temporary directory (beside the servers' own), removed after."""
    with tempfile.TemporaryDirectory(prefix="bench-disk-") as directory:
        body = payload[: scenario.size]
        seconds = write_durably(Path(directory), body, files=scenario.uploads, chunk=scenario.chunk)
    return Run(seconds, scenario.uploads * scenario.size, {})


async def upload_once(target: Server, scenario: Scenario, payload: memoryview) -> Run:
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
    return Run(elapsed, total, {"": usage.cpu_seconds}, usage.rss_start, usage.rss_peak)


def compare(entry: dict[str, Any], disk: list[float]) -> None:
    """Add to a scenario's `entry` the ratios the report and the checks read."""
    targets = entry["targets"]
    mb_per_s = {name: target["mb_per_s"] for name, target in targets.items()}
    by_round = {name: [run["mb_per_s"] for run in t["runs"]] for name, t in targets.items()}
    for name, key in (("service", "ratio_vs_sink"), ("service_postgres", "ratio_postgres_vs_sink")):
        if name in targets:
            entry[key] = mb_per_s[name] / mb_per_s["sink"]
    if "service" in targets:
        entry["paired_ratios_vs_sink"] = paired(by_round["service"], by_round["sink"])
    if "service" in targets and "sink_durable" in targets:
        entry["ratio_vs_sink_durable"] = mb_per_s["service"] / mb_per_s["sink_durable"]
    entry["disk"] = {"mb_per_s": median(disk), "runs_mb_per_s": disk}
    entry["ratio_disk_vs_sink"] = median(disk) / mb_per_s["sink"]
    entry["paired_disk_vs_sink"] = paired(disk, by_round["sink"])


async def measure(
    servers: list[Server], quick: bool, runs: int, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every scenario on every server (the first must be the raw sink) and the disk alone,
    `runs` rounds each."""
    sizes = (32 * MIB, 4, 16 * MIB) if quick else (256 * MIB, 8, 64 * MIB)
    chosen = scenarios(sizes[0], "concurrent_8", *sizes[1:])
    payload = make_payload(max(s.size for s in chosen))
    section: dict[str, Any] = {}
    for scenario in chosen:
        targets = {s.name: functools.partial(upload_once, s, scenario, payload) for s in servers}
        targets[DISK] = functools.partial(disk_once, scenario, payload)
        collected = await rounds(scenario, targets, runs, True, log)
        disk = [run.mb_per_s for run in collected.pop(DISK)]
        entry = {
            "label": scenario.label,
            "targets": {n: summarise(r) for n, r in collected.items()},
        }
        compare(entry, disk)
        section[scenario.key] = entry
    return section
