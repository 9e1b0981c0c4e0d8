"""Turning a run's results into the printed table, the JSON files and the PNG chart.

Also checks the issue's targets (benchmarks, not tests: a missed target is reported, it does not
fail the run).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.stats import MIB

RESULTS_DIR = Path(__file__).resolve().parent / "results"
THROUGHPUT_TARGETS = (
    "sink",
    "sink_fsync",
    "sink_durable",
    "service",
    "service_variant",
    "service_postgres",
)
# The floors for service / raw sink, by throughput scenario.
RATIO_FLOORS = {"single_5mib": 0.9, "single_1mib": 0.75}


def _num(value: Any, fmt: str = ".2f") -> str:
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        return format(value, fmt)
    return "-"


def rows_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for row in rows:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(out)


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it was met."""
    found: list[dict[str, Any]] = []
    sections = results["sections"]

    def add(name: str, target: str, value: float | None, met: bool | None) -> None:
        found.append({"name": name, "target": target, "value": value, "met": met})

    throughput = sections.get("throughput", {})
    for key, floor in RATIO_FLOORS.items():
        ratio = throughput.get(key, {}).get("ratio_vs_sink")
        if ratio is not None:
            label = throughput[key]["label"]
            add(f"service / raw sink, {label}", f">= {floor}", ratio, ratio >= floor)
            paired = throughput[key].get("paired_ratios_vs_sink")
            if paired:  # how much of the above is the machine: the same ratio, round by round
                rounds = f"{sum(r >= floor for r in paired)}/{len(paired)} rounds >= {floor}"
                spread = f"{paired[0]:.2f} to {paired[-1]:.2f}"
                add(f"  (paired per round: {spread}; {rounds})", "-", None, None)
            durable = throughput[key].get("ratio_vs_sink_durable")
            if durable is not None:  # for reading the above: the same durability on both sides
                add(f"  (service / sink flushed at the end, {label})", "-", durable, None)
            disk = throughput[key].get("paired_disk_vs_sink")
            if disk:  # the ceiling of any server that flushes: the disk alone, no server at all
                spread = f"{disk[0]:.2f} to {disk[-1]:.2f}"
                rounds = f"{sum(r >= floor for r in disk)}/{len(disk)} rounds >= {floor}"
                add(
                    f"  (disk alone, no server / raw sink, per round: {spread}; {rounds})",
                    "-",
                    throughput[key]["ratio_disk_vs_sink"],
                    None,
                )
            variant = throughput[key].get("ratio_variant_vs_sink")
            against = throughput[key].get("paired_variant_vs_service")
            if variant is not None and against:  # --variant-pythonpath: the change weighed
                add(f"  (variant / raw sink, {label})", "-", variant, None)
                middle = against[len(against) // 2]
                spread = f"{against[0]:.2f} to {against[-1]:.2f}"
                add(f"  (variant / service per round: {spread}; middle)", "-", middle, None)
    concurrent = throughput.get("concurrent_8", {}).get("targets", {}).get("service")
    if concurrent:
        rss = concurrent["rss_peak_mib"]
        add(
            f"service peak RSS, {throughput['concurrent_8']['label']}",
            "< 150 MB (143 MiB)",
            rss,
            rss * MIB < 150e6,
        )
    sqlite = sections.get("latency", {}).get("sqlite", {})
    if "head" in sqlite:
        add(
            "HEAD p50 on SQLite (ms)",
            "< 2 ms",
            sqlite["head"]["p50_ms"],
            sqlite["head"]["p50_ms"] < 2,
        )
    s3 = sections.get("s3", {}).get("by_chunk", {})
    if "5mib" in s3:
        value = s3["5mib"]["upload_part_per_patch_mean"]
        requests = s3["5mib"]["requests_per_patch_max"]
        add(
            "S3 UploadParts per aligned 5 MiB PATCH",
            "1 (and nothing else)",
            value,
            value == 1 and requests == 1,
        )
    if "1mib" in s3:
        value = s3["1mib"]["requests_per_patch_mean"]
        add("S3 requests per 1 MiB PATCH (mean)", "<= about 2", value, value <= 2.1)
    slow = sections.get("slow_clients", {})
    for name in ("service_sqlite", "service_postgres"):
        entry = slow.get(name, {})
        if "completed" in entry:
            add(
                f"slow clients complete ({name})",
                f"{entry['clients']}/{entry['clients']}",
                entry["completed"],
                entry["completed"] == entry["clients"],
            )
    return found


def _wall_time_table(throughput: dict[str, Any]) -> str:
    """The service's extra wall time per upload, split (single-upload scenarios)."""
    rows = []
    for entry in throughput.values():
        for baseline, split in entry.get("wall_time_split", {}).items():
            patches = entry["targets"]["service"]["patches"] - 1
            rows.append(
                [
                    entry["label"],
                    baseline,
                    _num(split["total_ms"], ".1f"),
                    _num(split["create_ms"], ".1f"),
                    f"{_num(split['patches_ms'], '.1f')} ({patches} x)",
                    _num(split["last_patch_ms"], ".1f"),
                    _num(split["rest_ms"], ".1f"),
                ]
            )
    if not rows:
        return ""
    headers = ["scenario", "against", "extra", "creation", "PATCHes", "completing", "rest"]
    return (
        "\nThe service's extra wall time per upload over the sink, ms (medians, client's view)\n"
        + rows_table(headers, rows)
    )


def table(results: dict[str, Any]) -> str:
    """The whole run as plain-text tables."""
    parts: list[str] = []
    machine = results["machine"]
    parts.append(
        f"Machine: {machine['cpu_model']}, {machine['logical_cores']} cores, "
        f"{machine['memory_gib']} GiB, Python {machine['python']} "
        f"({'quick' if results['quick'] else 'full'} run, {results['duration_s']:.0f} s)"
    )
    sections = results["sections"]
    throughput = sections.get("throughput", {})
    if throughput and "error" not in throughput and "skipped" not in throughput:
        rows = []
        for entry in throughput.values():
            for name in THROUGHPUT_TARGETS:
                t = entry["targets"].get(name)
                if t is None:
                    continue
                ratio = {
                    "service": entry.get("ratio_vs_sink"),
                    "service_variant": entry.get("ratio_variant_vs_sink"),
                    "service_postgres": entry.get("ratio_postgres_vs_sink"),
                }.get(name)
                rows.append(
                    [
                        entry["label"],
                        name,
                        _num(t["mb_per_s"], ".1f"),
                        _num(ratio) if ratio is not None else "",
                        _num(t["cpu_s_per_gib"]),
                        _num(t["rss_peak_mib"], ".1f"),
                        str(len(t["runs"])),
                    ]
                )
            disk = entry.get("disk")
            if disk:
                rows.append(
                    [
                        entry["label"],
                        "disk alone",
                        _num(disk["mb_per_s"], ".1f"),
                        _num(entry.get("ratio_disk_vs_sink")),
                        "",
                        "",
                        str(len(disk["runs_mb_per_s"])),
                    ]
                )
        parts.append(
            "\nThroughput (median MB/s = 10^6 B/s; CPU s per GiB; peak RSS of the server tree)\n"
            + rows_table(
                ["scenario", "target", "MB/s", "svc/sink", "CPU s/GiB", "peak RSS MiB", "runs"],
                rows,
            )
        )
        split = _wall_time_table(throughput)
        if split:
            parts.append(split)
    latency = sections.get("latency", {})
    if latency and "error" not in latency:
        rows = []
        for name in ("sink", "sqlite", "postgres"):
            entry = latency.get(name, {})
            if "skipped" in entry:
                rows.append([name, "skipped", "", "", "", entry["skipped"][:60]])
                continue
            if "head" not in entry:
                continue
            rows.append(
                [
                    name,
                    _num(entry["head"]["p50_ms"]),
                    _num(entry["head"]["p99_ms"]),
                    _num(entry["create"]["p50_ms"]),
                    _num(entry["create"]["p99_ms"]),
                    "",
                ]
            )
        parts.append(
            f"\nLatency over {latency.get('requests')} sequential requests (ms)\n"
            + rows_table(["server", "HEAD p50", "HEAD p99", "create p50", "create p99", ""], rows)
        )
    s3 = sections.get("s3", {})
    if "skipped" in s3 or "error" in s3:
        parts.append(f"\nS3: skipped: {s3.get('skipped') or s3.get('error')}")
    elif s3:
        rows = []
        for entry in s3["by_chunk"].values():
            ops = entry["totals"]["requests"]
            rows.append(
                [
                    f"{entry['chunk_mib']:g} MiB",
                    _num(entry["requests_per_mib"]),
                    _num(entry["requests_per_patch_mean"]),
                    str(entry["requests_per_patch_max"]),
                    _num(entry["upload_amplification"]),
                    _num(entry["bytes_received_per_mib"] / MIB),
                    ", ".join(f"{k} {v}" for k, v in ops.items()),
                ]
            )
        parts.append(
            f"\nS3 through the counting proxy ({s3['by_chunk']['1mib']['size_mib']:g} MiB upload, "
            f"{s3['part_size_mib']:g} MiB parts; totals include creation and finish)\n"
            + rows_table(
                [
                    "PATCH",
                    "req/MiB",
                    "req/PATCH",
                    "max",
                    "bytes sent/uploaded",
                    "MiB recv/MiB",
                    "requests by operation",
                ],
                rows,
            )
        )
    slow = sections.get("slow_clients", {})
    if slow and "error" not in slow:
        rows = []
        for name in ("sink", "service_sqlite", "service_postgres"):
            entry = slow.get(name, {})
            if "skipped" in entry:
                rows.append([name, "skipped", "", "", "", entry["skipped"][:60]])
            elif "completed" in entry:
                rows.append(
                    [
                        name,
                        f"{entry['completed']}/{entry['clients']}",
                        _num(entry["seconds"], ".1f"),
                        _num(entry["rss_peak_mib"], ".1f"),
                        _num(entry["cpu_seconds"], ".1f"),
                        (entry["failures"] or [""])[0][:70],
                    ]
                )
        parts.append(
            f"\nSlow clients: {slow.get('clients')} x {slow.get('size_kib')} KiB, "
            f"{slow.get('piece_kib')} KiB every {slow.get('interval_s')} s\n"
            + rows_table(
                ["server", "completed", "seconds", "peak RSS MiB", "CPU s", "first failure"], rows
            )
        )
    cleanup = sections.get("cleanup", {})
    if cleanup:
        if "seconds" in cleanup:
            parts.append(
                f"\nCleanup of {cleanup['uploads']} expired uploads: {cleanup['seconds']:.2f} s"
            )
        else:
            parts.append(f"\nCleanup: skipped: {cleanup.get('skipped') or cleanup.get('error')}")
    profile = sections.get("profile", {})
    for key, entry in profile.items():
        if not isinstance(entry, dict) or "layers" not in entry:
            continue
        rows = [
            [name, f"{v['share']:.0%}", _num(v["ms_per_patch"])]
            for name, v in list(entry["layers"].items())[:10]
        ]
        rows += [
            [f"(incl.) {name}", f"{v['share']:.0%}", _num(v["ms_per_patch"])]
            for name, v in entry["functions"].items()
        ]
        parts.append(
            f"\nProfile of the service, {key} PATCHes (py-spy, sampled ms per PATCH)\n"
            + rows_table(["where", "share", "ms/PATCH"], rows)
        )
    for name, section in sections.items():
        if isinstance(section, dict) and "error" in section:
            parts.append(f"\n{name}: ERROR {section['error']}")
    found = results.get("checks", [])
    if found:
        verdicts = {True: "met", False: "MISSED", None: ""}
        rows = [[c["name"], c["target"], _num(c["value"]), verdicts[c["met"]]] for c in found]
        parts.append("\nTargets\n" + rows_table(["what", "target", "measured", ""], rows))
    return "\n".join(parts)


def save(results: dict[str, Any], directory: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """Write `<timestamp>[-quick].json` and `latest[-quick].json`; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if results["quick"] else ""
    stamp = results["started_at"].replace(":", "").replace("-", "")[:15]
    stamped = directory / f"{stamp}{suffix}.json"
    latest = directory / f"latest{suffix}.json"
    text = json.dumps(results, indent=1, sort_keys=False, default=str) + "\n"
    stamped.write_text(text)
    latest.write_text(text)
    return stamped, latest
