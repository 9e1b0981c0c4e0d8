"""The PNG chart of a run (matplotlib, Agg): throughput, CPU, RSS, latency, S3, slow clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

COLOURS = {
    "sink": "#9e9e9e",
    "sink_fsync": "#616161",
    "sink_durable": "#bdbdbd",
    "service": "#1f77b4",
    "service_postgres": "#9467bd",
}
NAMES = {
    "sink": "raw sink",
    "sink_fsync": "raw sink + fsync",
    "sink_durable": "raw sink, flushed at the end",
    "service": "service (SQLite, local)",
    "service_postgres": "service (PostgreSQL, local)",
}


def _grouped(ax: Axes, throughput: dict[str, Any], metric: str, title: str) -> None:
    scenarios = list(throughput.values())
    width = 0.8 / len(COLOURS)
    for index, name in enumerate(COLOURS):
        values = [s["targets"].get(name, {}).get(metric, 0.0) for s in scenarios]
        xs = [i + (index - (len(COLOURS) - 1) / 2) * width for i in range(len(scenarios))]
        bars = ax.bar(xs, values, width, label=NAMES[name], color=COLOURS[name])
        ax.bar_label(bars, fmt="%.0f" if metric != "cpu_s_per_gib" else "%.1f", fontsize=6)
    ax.set_xticks(range(len(scenarios)))
    ax.set_xticklabels([s["label"].replace(", ", "\n", 1) for s in scenarios], fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", labelsize=7)


def _throughput(ax: Axes, throughput: dict[str, Any]) -> None:
    _grouped(ax, throughput, "mb_per_s", "Upload throughput, MB/s (median)")
    for i, scenario in enumerate(throughput.values()):
        ratio = scenario.get("ratio_vs_sink")
        if ratio is not None:
            top = max(t["mb_per_s"] for t in scenario["targets"].values())
            text = f"SQLite {ratio:.2f}x sink"
            if scenario.get("ratio_postgres_vs_sink") is not None:
                text += f"\nPostgreSQL {scenario['ratio_postgres_vs_sink']:.2f}x"
            if scenario.get("ratio_disk_vs_sink") is not None:  # the durable ceiling
                text += f"\ndisk alone {scenario['ratio_disk_vs_sink']:.2f}x"
            ax.text(i, top * 1.08, text, ha="center", fontsize=7, color="#1f77b4")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.3)
    ax.legend(fontsize=7, loc="upper right")


def _latency(ax: Axes, latency: dict[str, Any]) -> None:
    servers = [n for n in ("sink", "sqlite", "postgres") if "head" in latency.get(n, {})]
    labels = ["HEAD p50", "HEAD p99", "create p50", "create p99"]
    keys = [("head", "p50_ms"), ("head", "p99_ms"), ("create", "p50_ms"), ("create", "p99_ms")]
    width = 0.8 / max(len(servers), 1)
    colours = {"sink": "#9e9e9e", "sqlite": "#2ca02c", "postgres": "#9467bd"}
    for index, name in enumerate(servers):
        values = [latency[name][a][b] for a, b in keys]
        xs = [i + (index - (len(servers) - 1) / 2) * width for i in range(len(keys))]
        bars = ax.bar(xs, values, width, label=name, color=colours[name])
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.axhline(2.0, color="red", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_title(f"Latency, ms ({latency.get('requests')} sequential requests)", fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(axis="y", labelsize=7)


def _s3(ax: Axes, s3: dict[str, Any]) -> None:
    if "by_chunk" not in s3:
        ax.text(
            0.5,
            0.5,
            f"S3 skipped:\n{s3.get('skipped', s3.get('error', ''))[:80]}",
            ha="center",
            va="center",
            fontsize=8,
            wrap=True,
        )
        ax.set_axis_off()
        return
    entries = list(s3["by_chunk"].values())
    xs = range(len(entries))
    per_patch = [e["requests_per_patch_mean"] for e in entries]
    per_mib = [e["requests_per_mib"] for e in entries]
    amplification = [e["upload_amplification"] for e in entries]
    b1 = ax.bar([x - 0.27 for x in xs], per_patch, 0.27, label="requests / PATCH", color="#ff7f0e")
    b2 = ax.bar(list(xs), per_mib, 0.27, label="requests / MiB", color="#d62728")
    b3 = ax.bar(
        [x + 0.27 for x in xs], amplification, 0.27, label="bytes sent / uploaded", color="#8c564b"
    )
    for bars in (b1, b2, b3):
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([f"{e['chunk_mib']:g} MiB PATCHes" for e in entries], fontsize=7)
    ax.set_title(f"S3 on the wire ({s3['part_size_mib']:g} MiB parts)", fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(axis="y", labelsize=7)


def _slow(ax: Axes, slow: dict[str, Any]) -> None:
    colours = {"sink": "#9e9e9e", "service_sqlite": "#2ca02c", "service_postgres": "#9467bd"}
    for name, colour in colours.items():
        entry = slow.get(name, {})
        series = entry.get("rss_series_mib")
        if not series:
            continue
        label = f"{name}: {entry['completed']}/{entry['clients']} done"
        ax.plot([t for t, _ in series], [m for _, m in series], label=label, color=colour)
    ax.set_title(
        f"Slow clients: {slow.get('clients')} x {slow.get('size_kib')} KiB at ~64 KiB/s, "
        "server RSS (MiB)",
        fontsize=9,
    )
    ax.set_xlabel("seconds", fontsize=7)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)


def draw(results: dict[str, Any], path: Path) -> Path:
    sections = results["sections"]
    figure, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    throughput = sections.get("throughput", {})
    if throughput and "error" not in throughput:
        _throughput(axes[0][0], throughput)
        _grouped(axes[0][1], throughput, "cpu_s_per_gib", "Server CPU seconds per GiB")
        _grouped(axes[0][2], throughput, "rss_peak_mib", "Server peak RSS, MiB")
        axes[0][2].axhline(150e6 / 2**20, color="red", linewidth=0.8, linestyle="--")
    latency = sections.get("latency", {})
    if latency and "error" not in latency:
        _latency(axes[1][0], latency)
    _s3(axes[1][1], sections.get("s3", {"skipped": "not run"}))
    slow = sections.get("slow_clients", {})
    if slow and "error" not in slow:
        _slow(axes[1][2], slow)
    machine = results["machine"]
    figure.suptitle(
        f"video-upload benchmarks, {results['started_at'][:16]} UTC"
        f"{' (quick)' if results['quick'] else ''} - {machine['cpu_model']}, "
        f"{machine['logical_cores']} cores, {machine['memory_gib']} GiB, "
        f"Python {machine['python']}",
        fontsize=10,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.96))
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
