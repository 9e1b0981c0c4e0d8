"""A run's results as the printed tables, `latest.json`, a row of the history table, and the
verdicts on the targets (docs/performance.md, "Targets"; a missed one does not fail the run)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from bench.servers import REPO_ROOT
from bench.stats import MIB

RESULTS_DIR = Path(__file__).resolve().parent / "results"
HISTORY_FILE = RESULTS_DIR / "history.md"
RATIO_FLOORS = {"single_5mib": 0.9, "single_1mib": 0.75}  # service / raw sink
S3_RATIO_FLOORS = {"single_5mib": 0.85, "single_1mib": 0.6}  # the tus path / the ceiling
S3_DIRECT_FLOOR = 0.9  # the direct path / the ceiling: "about 1.0"
LIBRARIES = ("uvicorn", "uvloop", "httptools", "starlette", "fastapi", "sqlalchemy", "httpx")


def machine() -> dict[str, Any]:
    """What the numbers ran on: CPU, cores, memory, Python and library versions."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        if found := re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M):
            model = found.group(1).strip()
    versions = dict.fromkeys(LIBRARIES, "-")
    for name in LIBRARIES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return {
        "cpu_model": model,
        "logical_cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": versions,
    }


def source(pythonpath: str | None) -> dict[str, Any]:
    """Which service code was measured: the commit of its checkout, and how many files under
    its src/ differ from it (with `--server-pythonpath`, the checkout holding that directory)."""

    def git(*args: str) -> str:
        try:
            cwd = Path(pythonpath) if pythonpath else REPO_ROOT
            return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True).stdout
        except OSError:
            return ""

    changed = git("status", "--porcelain", "--", "." if pythonpath else "src").splitlines()
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "uncommitted_src_files": len(changed),
    }


def _num(value: Any, fmt: str = ".2f") -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and not math.isnan(value):
        return format(value, fmt)
    return "-"


def _rounds(values: list[float], floor: float) -> str:
    met = sum(value >= floor for value in values)
    return f"{values[0]:.2f} to {values[-1]:.2f}; {met}/{len(values)} rounds >= {floor}"


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets, each with the measured value and whether it was met (None: context)."""
    found: list[dict[str, Any]] = []
    sections = results["sections"]

    def add(name: str, target: str, value: float | None, met: bool | None = None) -> None:
        found.append({"name": name, "target": target, "value": value, "met": met})

    def floor(name: str, ratio: float, least: float | None, rounds: list[float] | None) -> None:
        add(name, f">= {least}" if least else "-", ratio, ratio >= least if least else None)
        if least and rounds:  # a lucky median shows here
            add(f"  (round by round: {_rounds(rounds, least)})", "-", None)

    throughput = sections.get("throughput", {})
    for key, least in RATIO_FLOORS.items():
        if "ratio_vs_sink" not in (entry := throughput.get(key, {})):
            continue
        name = f"service / raw sink, {entry['label']}"
        floor(name, entry["ratio_vs_sink"], least, entry.get("paired_ratios_vs_sink"))
        if "ratio_vs_sink_durable" in entry:  # the same durability on both sides
            add("  (service / sink flushed at the end)", "-", entry["ratio_vs_sink_durable"])
        if entry.get("paired_disk_vs_sink"):  # the most the disk allows any durable server
            line = _rounds(entry["paired_disk_vs_sink"], least)
            add(f"  (disk alone / raw sink: {line})", "-", entry["ratio_disk_vs_sink"])
    concurrent = throughput.get("concurrent_8", {})
    if "service" in concurrent.get("targets", {}):
        rss = concurrent["targets"]["service"]["rss_peak_mib"]
        label = f"service peak RSS (MiB), {concurrent['label']}"
        add(label, "< 150 MB (143 MiB)", rss, rss * MIB < 150e6)
    latency = sections.get("latency", {})
    if "head" in latency.get("sqlite", {}):
        p50 = latency["sqlite"]["head"]["p50_ms"]
        add("HEAD p50 on SQLite (ms)", "< 2 ms", p50, p50 < 2)
    if "head" in latency.get("postgres", {}):
        add("  (HEAD p50 on PostgreSQL, ms)", "-", latency["postgres"]["head"]["p50_ms"])
    s3 = sections.get("s3", {})
    if "5mib" in s3.get("by_chunk", {}):
        aligned = s3["by_chunk"]["5mib"]
        parts, most = aligned["upload_part_per_patch_mean"], aligned["requests_per_patch_max"]
        name = "S3 UploadParts per aligned 5 MiB PATCH"
        add(name, "1 and nothing else", parts, parts == most == 1)
    if "1mib" in s3.get("by_chunk", {}):
        value = s3["by_chunk"]["1mib"]["requests_per_patch_mean"]
        add("S3 requests per 1 MiB PATCH", "about 2 (<= 2.1)", value, value <= 2.1)
    for key, entry in s3.get("throughput", {}).items():
        if not isinstance(entry, dict) or "ratio_service_vs_ceiling" not in entry:
            continue
        name, ratio = f"S3 tus path / ceiling, {entry['label']}", entry["ratio_service_vs_ceiling"]
        floor(name, ratio, S3_RATIO_FLOORS.get(key), entry.get("paired_service_vs_ceiling"))
        if "ratio_direct_vs_ceiling" in entry:
            direct = entry["ratio_direct_vs_ceiling"]
            name = f"S3 direct path / ceiling, {entry['label']}"
            add(name, f"about 1.0 (>= {S3_DIRECT_FLOOR})", direct, direct >= S3_DIRECT_FLOOR)
    for name in ("service_sqlite", "service_postgres"):
        entry = sections.get("slow_clients", {}).get(name, {})
        if "completed" in entry:
            done, clients = entry["completed"], entry["clients"]
            add(f"slow clients completed ({name})", f"{clients}/{clients}", done, done == clients)
    cleanup = sections.get("cleanup", {})
    if "seconds" in cleanup:
        add(f"cleanup of {cleanup['uploads']} expired uploads (s)", "-", cleanup["seconds"])
    return found


def rows_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in lines)


def _rows(
    section: dict[str, Any], ratios: dict[str, str], columns: dict[str, str]
) -> list[list[str]]:
    """A row per scenario and target: MB/s, the ratio named in `ratios` for the target, then
    `columns` (key: format); and the disk alone where measured."""
    rows = []
    for entry in (e for e in section.values() if isinstance(e, dict)):
        for name, t in entry["targets"].items():
            ratio = _num(entry[ratios[name]]) if ratios.get(name, "") in entry else ""
            cells = [_num(t.get(key), fmt) for key, fmt in columns.items()]
            rows.append([entry["label"], name, _num(t["mb_per_s"], ".1f"), ratio, *cells])
        if "disk" in entry:
            disk = [_num(entry["disk"]["mb_per_s"], ".1f"), _num(entry["ratio_disk_vs_sink"])]
            rows.append([entry["label"], "disk alone", *disk, "", ""])
    return rows


def table(results: dict[str, Any]) -> str:
    """The throughput tables and the targets (each section logs its other figures as it runs)."""
    m, sections = results["machine"], results["sections"]
    parts = [
        f"Machine: {m['cpu_model']}, {m['logical_cores']} cores, {m['memory_gib']} GiB, "
        f"Python {m['python']} ({'quick' if results['quick'] else 'full'} run, "
        f"{results['duration_s']:.0f} s)"
    ]
    throughput = sections.get("throughput", {})
    if throughput and "error" not in throughput:
        title = "Throughput (medians; MB/s = 10^6 B/s; the server process tree's CPU and RSS)"
        ratios = {"service": "ratio_vs_sink", "service_postgres": "ratio_postgres_vs_sink"}
        rows = _rows(throughput, ratios, {"cpu_s_per_gib": ".2f", "rss_peak_mib": ".1f"})
        headers = ["scenario", "target", "MB/s", "/ raw sink", "CPU s/GiB", "peak RSS MiB"]
        parts.append(f"\n{title}\n{rows_table(headers, rows)}")
    if s3 := sections.get("s3", {}).get("throughput", {}):
        database = s3.get("database", "sqlite")
        title = f"S3 throughput against SeaweedFS (the service on {database}; medians; CPU s/GiB"
        title += " of the service's process tree, the uploading client, SeaweedFS)"
        ratios = {name: f"ratio_{name}_vs_ceiling" for name in ("service", "direct")}
        cpu = {f"{who}_cpu_s_per_gib": ".2f" for who in ("service", "client", "s3")}
        headers = ["scenario", "path", "MB/s", "/ ceiling", "service", "client", "SeaweedFS"]
        parts.append(f"\n{title}\n{rows_table(headers, _rows(s3, ratios, cpu))}")
    for name, section in sections.items():
        if "error" in section or "skipped" in section:
            parts.append(f"\n{name}: {section.get('error') or 'skipped: ' + section['skipped']}")
    verdicts = {True: "met", False: "MISSED", None: ""}
    rows = [
        [c["name"], c["target"], _num(c["value"]), verdicts[c["met"]]] for c in results["checks"]
    ]
    parts.append("\nTargets\n" + rows_table(["what", "target", "measured", ""], rows))
    return "\n".join(parts)


def save(results: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """Write `latest.json` (`latest-quick.json` for a quick run) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"latest{'-quick' if results['quick'] else ''}.json"
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    return path


HISTORY_HEADER = """\
# Benchmark history

One row per full run of `make bench`, oldest first, written by the run itself. Ratios are the
service's MB/s (SQLite, local store) over the raw sink's, medians of the run's rounds, with the
rounds that met the floor (0.9 at 5 MiB, 0.75 at 1 MiB). "Disk / sink" is the disk alone over
the raw sink at 5 MiB: the disk, not the service, may set the pace of a server that keeps its
bytes where it is low (one reading can also catch the disk busy: read it over the runs). "S3" is
the tus path over the ceiling against SeaweedFS, with 5 MiB and 1 MiB PATCHes, with the rounds
that met the floor (0.85 and 0.6); "-": not measured or not recorded. Compare ratios and CPU
seconds per GiB across machines, not MB/s.

| run (UTC) | commit | machine | raw sink, 5 MiB | 5 MiB | 1 MiB | 8 x 64 MiB | disk / sink \
| service CPU s/GiB, 5 / 1 MiB | S3, 5 MiB | S3, 1 MiB |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
"""


def history_row(results: dict[str, Any]) -> str:
    """The history table's row for a full run's results."""
    throughput = results["sections"]["throughput"]
    source = results.get("source", {})
    commit = str(source.get("commit", "?")) + ("+" if source.get("uncommitted_src_files") else "")
    model = re.sub(r"\(R\)|\(TM\)| Processor| CPU", "", results["machine"].get("cpu_model", "?"))
    model = " ".join(model.split("@")[0].split()[:3])

    def with_rounds(value: float, rounds: list[float], floor: float | None) -> str:
        met = f" ({sum(r >= floor for r in rounds)}/{len(rounds)})" if floor and rounds else ""
        return f"{value:.2f}{met}"

    def ratio(key: str) -> str:
        entry = throughput.get(key, {})
        if "ratio_vs_sink" not in entry:
            return "-"
        rounds, floor = entry.get("paired_ratios_vs_sink") or [], RATIO_FLOORS.get(key)
        return with_rounds(entry["ratio_vs_sink"], rounds, floor)

    s3 = results["sections"].get("s3", {}).get("throughput", {})

    def s3_ratio(key: str) -> str:
        entry = s3.get(key, {})
        if not isinstance(entry, dict) or "ratio_service_vs_ceiling" not in entry:
            return "-"
        rounds, floor = entry.get("paired_service_vs_ceiling") or [], S3_RATIO_FLOORS.get(key)
        return with_rounds(entry["ratio_service_vs_ceiling"], rounds, floor)

    five, one = throughput.get("single_5mib", {}), throughput.get("single_1mib", {})
    cpu = [e.get("targets", {}).get("service", {}).get("cpu_s_per_gib") for e in (five, one)]
    cells = [
        results["started_at"][:16].replace("T", " "),
        commit,
        f"{model}, {results['machine'].get('logical_cores', '?')} cores",
        f"{_num(five.get('targets', {}).get('sink', {}).get('mb_per_s'), ',.0f')} MB/s",
        *(ratio(key) for key in ("single_5mib", "single_1mib", "concurrent_8")),
        _num(five.get("ratio_disk_vs_sink")),
        " / ".join(_num(value) for value in cpu),
        *(s3_ratio(key) for key in ("single_5mib", "single_1mib")),
    ]
    return "| " + " | ".join(cells) + " |"


def append_history(results: dict[str, Any], path: Path = HISTORY_FILE) -> None:
    """Add the run's row to the history table (created with its header when missing)."""
    text = path.read_text() if path.exists() else HISTORY_HEADER
    path.write_text(text.rstrip("\n") + "\n" + history_row(results) + "\n")
