"""`python -m bench.history`: the saved full runs side by side, and how often a target was met.

A single run's ratio moves with the machine, so the throughput targets are judged over the saved
runs; these tests pin what is counted (full runs only, rounds as well as runs) and which runs
`--since` keeps.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench import history
from bench.report import RESULTS_DIR


def _run(started_at: str, commit: str, r5: float, r1: float, **extra: Any) -> dict[str, Any]:
    """A saved full run; each scenario's two rounds lie 0.04 either side of its ratio."""

    def scenario(label: str, ratio: float, rounds: list[float]) -> dict[str, Any]:
        # against the sink flushed at the end: 0.05 better, rounds at 1,000 MB/s over it
        flushed = [r + 0.05 for r in rounds]
        return {
            "label": label,
            "ratio_vs_sink": ratio,
            "paired_ratios_vs_sink": rounds,
            "ratio_vs_sink_durable": ratio + 0.05,
            "targets": {
                "service": {
                    "cpu_s_per_gib": 1.25,
                    "runs": [{"mb_per_s": 1000 * f} for f in flushed],
                },
                "sink_durable": {"runs": [{"mb_per_s": 1000.0} for _ in flushed]},
            },
        }

    return {
        "started_at": started_at,
        "quick": False,
        "machine": {
            "cpu_model": "Intel(R) Xeon(R) Processor",
            "logical_cores": 2,
            "python": "3.11.7",
        },
        "source": {"commit": commit, "uncommitted_src_files": 0},
        "sections": {
            "throughput": {
                "single_5mib": scenario("1 x 256 MiB, 5 MiB PATCHes", r5, [r5 - 0.04, r5 + 0.04]),
                "single_1mib": scenario("1 x 256 MiB, 1 MiB PATCHes", r1, [r1 - 0.04, r1 + 0.04]),
            }
        },
        **extra,
    }


def _save(directory: Path, name: str, data: dict[str, Any]) -> None:
    (directory / name).write_text(json.dumps(data))


def test_history_counts_full_runs_and_rounds_meeting_each_floor(tmp_path: Path) -> None:
    _save(tmp_path, "b.json", _run("2026-11-24T12:00:00+00:00", "bbbbbbb", 0.92, 0.70))
    _save(tmp_path, "a.json", _run("2026-11-24T11:00:00+00:00", "aaaaaaa", 0.80, 0.80))
    _save(tmp_path, "latest.json", _run("2026-11-24T12:00:00+00:00", "bbbbbbb", 0.92, 0.70))
    _save(tmp_path, "q.json", _run("2026-11-24T13:00:00+00:00", "ccccccc", 1.5, 1.5, quick=True))

    runs = history.load_runs(tmp_path)

    assert [run.commit for run in runs] == ["aaaaaaa", "bbbbbbb"]  # oldest first, no copies
    assert history.tally(runs) == [
        "service / raw sink >= 0.9, 1 x 256 MiB, 5 MiB PATCHes: met in 1 of 2 runs "
        "(0.80 to 0.92, median 0.86); 1 of 4 rounds",
        "service / raw sink >= 0.75, 1 x 256 MiB, 1 MiB PATCHes: met in 1 of 2 runs "
        "(0.70 to 0.80, median 0.75); 2 of 4 rounds",
        "service / sink flushed at the end >= 0.9, 1 x 256 MiB, 5 MiB PATCHes: met in 1 of 2 "
        "runs (0.85 to 0.97, median 0.91); 2 of 4 rounds",
        "service / sink flushed at the end >= 0.75, 1 x 256 MiB, 1 MiB PATCHes: met in 2 of 2 "
        "runs (0.75 to 0.85, median 0.80); 3 of 4 rounds",
    ]
    lines = history.table(runs).splitlines()
    assert re.split(r"\s{2,}", lines[2].strip()) == [
        "2026-11-24 11:00",
        "aaaaaaa",
        "Intel Xeon, 2 cores",
        "3.11.7",
        "0.80 (0/2)",  # 5 MiB: ratio (rounds at or above 0.9)
        "0.80 (2/2)",  # 1 MiB: ratio (rounds at or above 0.75)
        "0.85 / 0.85",  # against the sink flushed at the end
        "1.25 / 1.25",  # the service's CPU s/GiB
        "-",  # the disk alone: not measured before the tenth session
    ]
    disk = _run("2026-11-25T11:00:00+00:00", "ddddddd", 0.8, 0.8)
    disk["sections"]["throughput"]["single_5mib"]["ratio_disk_vs_sink"] = 0.84
    disk["sections"]["throughput"]["single_1mib"]["ratio_disk_vs_sink"] = 2.5
    row = history.table([history.saved_run(disk)]).splitlines()[2]
    assert re.split(r"\s{2,}", row.strip())[-1] == "0.84 / 2.50"  # the disk alone / raw sink


def test_history_marks_a_run_measured_with_uncommitted_changes(tmp_path: Path) -> None:
    data = _run("2026-11-24T11:00:00+00:00", "aaaaaaa", 0.8, 0.8)
    data["source"]["uncommitted_src_files"] = 2
    _save(tmp_path, "a.json", data)

    assert [run.commit for run in history.load_runs(tmp_path)] == ["aaaaaaa+"]


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_history_since_keeps_only_runs_of_code_containing_the_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    commits = []
    for number in range(3):
        (repo / "f").write_text(str(number))
        _git(repo, "add", "f")
        _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
        commits.append(_git(repo, "rev-parse", "--short", "HEAD"))
    first, middle, last = commits

    assert history.is_commit(middle, repo)
    assert not history.is_commit("0000000", repo)
    assert [history.contains(c, middle, repo) for c in commits] == [False, True, True]
    assert history.contains(last + "+", middle, repo)
    assert not history.contains(first, last, repo)


def test_history_command_refuses_an_unknown_since_commit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert history.main(["--since", "not-a-commit-anywhere"]) == 2
    assert "not a commit" in capsys.readouterr().err


def test_history_reads_every_full_run_saved_in_the_repository() -> None:
    saved = [
        path
        for path in RESULTS_DIR.glob("*.json")
        if path.name != "latest.json" and not json.loads(path.read_text()).get("quick")
    ]

    runs = history.load_runs(RESULTS_DIR)

    assert len(runs) == len(saved) > 0
    assert all({"single_5mib", "single_1mib"} <= run.ratios.keys() for run in runs)
    assert history.tally(runs)[0].startswith("service / raw sink >= 0.9, 1 x 256 MiB, 5 MiB")
