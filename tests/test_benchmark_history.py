"""The benchmark's history table (`bench/results/history.md`): one row per full run.

A single run's ratio moves with the machine, so the throughput targets are read over the runs;
these tests pin what a row says and that the committed table stays one well-formed table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report import HISTORY_FILE, append_history, history_row


def _results(commit: str = "abc1234", uncommitted: int = 0) -> dict[str, Any]:
    def scenario(ratio: float, rounds: list[float]) -> dict[str, Any]:
        targets = {"sink": {"mb_per_s": 1234.5}, "service": {"cpu_s_per_gib": 1.25}}
        return {"ratio_vs_sink": ratio, "paired_ratios_vs_sink": rounds, "targets": targets}

    five = scenario(0.92, [0.85, 0.91, 0.95])
    five["ratio_disk_vs_sink"] = 2.26
    return {
        "started_at": "2026-11-25T04:54:55+00:00",
        "machine": {"cpu_model": "Intel(R) Xeon(R) Processor @ 2.1GHz", "logical_cores": 2},
        "source": {"commit": commit, "uncommitted_src_files": uncommitted},
        "sections": {
            "throughput": {
                "single_5mib": five,
                "single_1mib": scenario(0.74, [0.7, 0.76]),
                "concurrent_8": scenario(0.9, [0.88, 0.93]),
            },
            "s3": {
                "throughput": {
                    "part_size_mib": 5.0,
                    "single_5mib": s3_scenario(0.88, [0.84, 0.88, 0.9]),
                    "single_1mib": s3_scenario(0.62, [0.58, 0.62, 0.66]),
                }
            },
        },
    }


def s3_scenario(ratio: float, rounds: list[float]) -> dict[str, Any]:
    return {"ratio_service_vs_ceiling": ratio, "paired_service_vs_ceiling": rounds}


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def test_history_row_gives_each_ratio_with_the_rounds_that_met_its_floor() -> None:
    assert _cells(history_row(_results())) == [
        "2026-11-25 04:54",
        "abc1234",
        "Intel Xeon, 2 cores",
        "1,234 MB/s",  # the raw sink at 5 MiB: what kind of machine it was
        "0.92 (2/3)",  # rounds at or above 0.9
        "0.74 (1/2)",  # rounds at or above 0.75
        "0.90",  # no floor for the concurrent uploads
        "2.26",  # the disk alone / raw sink
        "1.25 / 1.25",
        "0.88 (2/3)",  # S3, tus path / ceiling: rounds at or above 0.85
        "0.62 (2/3)",  # rounds at or above 0.6
    ]


def test_history_row_of_a_run_without_its_s3_section_says_so() -> None:
    results = _results()
    del results["sections"]["s3"]

    assert _cells(history_row(results))[-2:] == ["-", "-"]


def test_history_row_marks_a_run_measured_with_uncommitted_changes() -> None:
    assert _cells(history_row(_results(uncommitted=2)))[1] == "abc1234+"


def test_appending_creates_the_table_once_then_adds_one_row_per_run(tmp_path: Path) -> None:
    path = tmp_path / "history.md"

    append_history(_results("aaaaaaa"), path)
    append_history(_results("bbbbbbb"), path)

    rows = [line for line in path.read_text().splitlines() if line.startswith("| 2026")]
    assert [_cells(row)[1] for row in rows] == ["aaaaaaa", "bbbbbbb"]
    assert path.read_text().count("| run (UTC) |") == 1


def test_committed_history_is_one_table_whose_rows_have_every_column() -> None:
    lines = HISTORY_FILE.read_text().splitlines()
    table = [line for line in lines if line.startswith("|")]
    header, rows = _cells(table[0]), table[2:]
    assert len(rows) > 0
    assert all(len(_cells(row)) == len(header) for row in rows)
    assert lines.index(table[-1]) - lines.index(table[0]) == len(table) - 1  # no gaps
