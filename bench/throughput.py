"""Upload throughput: the service against the raw sink and the disk alone, the same client
sending the same bytes; and the scenarios and interleaved rounds that `bench.s3throughput` runs
too (docs/performance.md, "Measuring" and "Reading the numbers")."""

from __future__ import annotations

import asyncio
import functools
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
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
        per_gib = {who: None if s is None else s / gib for who, s in self.cpu.items()}
        return {f"{who}_cpu_s_per_gib".lstrip("_"): value for who, value in per_gib.items()}

    def __str__(self) -> str:
        gib = self.total_bytes / GIB
        cpu = [f"{who or 'server'} {s / gib:.2f}" for who, s in self.cpu.items() if s is not None]
        text = f"{self.mb_per_s:7.1f} MB/s" + (f", CPU s/GiB: {', '.join(cpu)}" if cpu else "")
        return text + (f", peak RSS {self.rss_peak / MIB:6.1f} MiB" if self.rss_peak else "")


Targets = dict[str, Callable[[], Awaitable[Run]]]  # a round of each target, by name


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


def ratio(targets: dict[str, Any], name: str, base: str) -> tuple[float, list[float]]:
    """`name`'s MB/s over `base`'s: of the medians, and round by round (sorted)."""
    rounds = [[run["mb_per_s"] for run in targets[each]["runs"]] for each in (name, base)]
    return targets[name]["mb_per_s"] / targets[base]["mb_per_s"], paired(*rounds)


async def run_scenarios(
    concurrent: str,
    sizes: tuple[int, int, int],
    targets: Callable[[Scenario, memoryview], Targets],
    runs: int,
    warm_up: bool,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """One upload of `sizes[0]` bytes in 5 MiB PATCHes, one in 1 MiB PATCHes, and `sizes[1]`
    concurrent uploads of `sizes[2]` bytes (the scenario `concurrent`): each target once, not
    counted (when `warm_up`), then `runs` rounds of every target in turn, so that the machine's
    drift hits every target alike. Each scenario's label and its targets' summaries."""
    single, uploads, each = sizes
    chosen = [
        Scenario("single_5mib", 1, single, 5 * MIB),
        Scenario("single_1mib", 1, single, MIB),
        Scenario(concurrent, uploads, each, 5 * MIB),
    ]
    payload = make_payload(max(single, each))
    section: dict[str, Any] = {}
    for scenario in chosen:
        once = targets(scenario, payload)
        for call in once.values() if warm_up else []:
            await call()
        collected: dict[str, list[Run]] = {name: [] for name in once}
        for attempt in range(1, runs + 1):
            for name, call in once.items():
                collected[name].append(run := await call())
                log(f"  {scenario.label:<30} {name:<16} run {attempt}/{runs}: {run}")
        summaries = {name: summarise(done) for name, done in collected.items()}
        section[scenario.key] = {"label": scenario.label, "targets": summaries}
    return section


def write_durably(directory: Path, payload: memoryview, *, files: int, chunk: int) -> float:
    """Seconds to write `payload` to `files` new files in `directory` as the local store does by
    default: `chunk` bytes at a time (the files in turn), writeback started after every piece,
    an fsync per file at the end. The files are left in `directory`."""
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


async def measure(
    servers: list[Server], quick: bool, runs: int, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every scenario on every server (one named "sink": the raw sink) and the disk alone."""

    def targets(scenario: Scenario, payload: memoryview) -> Targets:
        once: Targets = {
            s.name: functools.partial(upload_once, s, scenario, payload) for s in servers
        }
        once[DISK] = functools.partial(disk_once, scenario, payload)
        return once

    sizes = (32 * MIB, 4, 16 * MIB) if quick else (256 * MIB, 8, 64 * MIB)
    section = await run_scenarios("concurrent_8", sizes, targets, runs, True, log)
    for entry in section.values():  # the ratios the report and the checks read
        found = entry["targets"]
        if "service" in found:
            entry["ratio_vs_sink"], entry["paired_ratios_vs_sink"] = ratio(found, "service", "sink")
        if "service_postgres" in found:
            entry["ratio_postgres_vs_sink"] = ratio(found, "service_postgres", "sink")[0]
        if "service" in found and "sink_durable" in found:
            entry["ratio_vs_sink_durable"] = ratio(found, "service", "sink_durable")[0]
        entry["ratio_disk_vs_sink"], entry["paired_disk_vs_sink"] = ratio(found, DISK, "sink")
        disk = [run["mb_per_s"] for run in found.pop(DISK)["runs"]]
        entry["disk"] = {"mb_per_s": median(disk), "runs_mb_per_s": disk}
    return section
