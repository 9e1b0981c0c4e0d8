"""Every saved full run side by side, and how often each throughput target was met.

`python -m bench` saves one JSON per full run in `bench/results/`. One run's service / raw sink
ratio moves by 0.1 or more with the machine (README, "Latest numbers"), so a throughput target
is judged better over the runs than from the latest one alone:

    uv run --group bench python -m bench.history                  # every saved full run
    uv run --group bench python -m bench.history --since ecc8798  # runs of code containing it

`--since COMMIT` keeps the runs whose measured commit contains COMMIT (`git merge-base
--is-ancestor`), for instance the commit that last changed the upload path. Quick runs and
`latest.json` (a copy of the newest run) are left out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import REPO_ROOT
from bench.report import RATIO_FLOORS, RESULTS_DIR, rows_table
from bench.stats import median


@dataclass(frozen=True)
class SavedRun:
    """What one full run measured for the throughput targets."""

    started_at: str
    commit: str
    machine: str
    python: str
    ratios: dict[str, float]  # scenario key -> service / raw sink (ratio of the medians)
    rounds: dict[str, list[float]]  # scenario key -> the same, round by round
    flushed: dict[str, float]  # scenario key -> service / sink flushed at the end
    flushed_rounds: dict[str, list[float]]  # the same, round by round
    cpu_s_per_gib: dict[str, float]  # scenario key -> the service's CPU seconds per GiB
    disk: dict[
        str, float
    ]  # scenario key -> the disk alone / raw sink (runs since the tenth session)
    labels: dict[str, str]  # scenario key -> e.g. "1 x 256 MiB, 5 MiB PATCHes"


def _rounds_against(scenario: dict[str, Any], baseline: str) -> list[float]:
    """The service's MB/s over `baseline`'s, round by round (its runs and the baseline's, in
    the order they ran), sorted; empty when the run has no such rounds."""
    targets = scenario.get("targets", {})
    service = targets.get("service", {}).get("runs", [])
    other = targets.get(baseline, {}).get("runs", [])
    if not service or len(service) != len(other):
        return []
    return sorted(a["mb_per_s"] / b["mb_per_s"] for a, b in zip(service, other, strict=True))


def machine_name(machine: dict[str, Any]) -> str:
    """ "Intel(R) Xeon(R) Processor" with 2 cores -> "Intel Xeon, 2 cores"."""
    model = str(machine.get("cpu_model", "unknown CPU"))
    for noise in ("(R)", "(TM)", " Processor", " CPU"):
        model = model.replace(noise, "")
    return f"{' '.join(model.split())}, {machine.get('logical_cores', '?')} cores"


def saved_run(data: dict[str, Any]) -> SavedRun:
    throughput: dict[str, Any] = data["sections"]["throughput"]
    scenarios = {key: throughput[key] for key in RATIO_FLOORS if key in throughput}
    source = data.get("source", {})
    commit = str(source.get("commit", "?"))
    if source.get("uncommitted_src_files"):
        commit += "+"  # measured with uncommitted changes to the package
    return SavedRun(
        started_at=str(data["started_at"]),
        commit=commit,
        machine=machine_name(data.get("machine", {})),
        python=str(data.get("machine", {}).get("python", "?")),
        ratios={k: s["ratio_vs_sink"] for k, s in scenarios.items() if "ratio_vs_sink" in s},
        rounds={k: list(s.get("paired_ratios_vs_sink", [])) for k, s in scenarios.items()},
        flushed={
            k: s["ratio_vs_sink_durable"]
            for k, s in scenarios.items()
            if "ratio_vs_sink_durable" in s
        },
        flushed_rounds={k: _rounds_against(s, "sink_durable") for k, s in scenarios.items()},
        cpu_s_per_gib={
            k: s["targets"]["service"]["cpu_s_per_gib"]
            for k, s in scenarios.items()
            if "service" in s.get("targets", {})
        },
        labels={k: str(s.get("label", k)) for k, s in scenarios.items()},
        disk={
            k: s["ratio_disk_vs_sink"] for k, s in scenarios.items() if "ratio_disk_vs_sink" in s
        },
    )


def load_runs(directory: Path) -> list[SavedRun]:
    """The full runs saved in `directory`, oldest first."""
    runs = []
    for path in directory.glob("*.json"):
        if path.name == "latest.json":
            continue
        data = json.loads(path.read_text())
        if data.get("quick") or "throughput" not in data.get("sections", {}):
            continue
        runs.append(saved_run(data))
    return sorted(runs, key=lambda run: run.started_at)


def contains(commit: str, ancestor: str, repo: Path = REPO_ROOT) -> bool:
    """Whether `commit` (a run's, possibly marked "+") contains `ancestor`."""
    checked = subprocess.run(
        ["git", "merge-base", "--is-ancestor", ancestor, commit.rstrip("+")],
        cwd=repo,
        capture_output=True,
        check=False,
    )
    return checked.returncode == 0


def is_commit(name: str, repo: Path = REPO_ROOT) -> bool:
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"],
        cwd=repo,
        capture_output=True,
        check=False,
    )
    return found.returncode == 0


def _cell(run: SavedRun, key: str) -> str:
    ratio = run.ratios.get(key)
    if ratio is None:
        return "-"
    rounds = run.rounds.get(key) or []
    floor = RATIO_FLOORS[key]
    met = f"{sum(r >= floor for r in rounds)}/{len(rounds)}" if rounds else "-"
    return f"{ratio:.2f} ({met})"


def _size(key: str) -> str:
    """ "single_5mib" -> "5 MiB"."""
    return key.removeprefix("single_").replace("mib", " MiB")


def _pair(values: dict[str, float]) -> str:
    return " / ".join(f"{values[k]:.2f}" if k in values else "-" for k in RATIO_FLOORS)


def table(runs: list[SavedRun]) -> str:
    headers = ["run (UTC)", "commit", "machine", "Python"]
    headers += [f"{_size(key)} (rounds >= {floor})" for key, floor in RATIO_FLOORS.items()]
    headers += ["vs flushed sink", "service CPU s/GiB", "disk alone / sink"]
    rows = [
        [
            run.started_at[:16].replace("T", " "),
            run.commit,
            run.machine,
            run.python,
            *(_cell(run, key) for key in RATIO_FLOORS),
            _pair(run.flushed),
            _pair(run.cpu_s_per_gib),
            _pair(run.disk) if run.disk else "-",
        ]
        for run in runs
    ]
    return rows_table(headers, rows)


def tally(runs: list[SavedRun]) -> list[str]:
    """One line per throughput target: in how many runs, and rounds, it was met; then the same
    floors against the sink flushed at the end (what the store's durability costs the sink
    itself left out)."""
    lines = []
    against: list[tuple[str, list[dict[str, float]], list[dict[str, list[float]]]]] = [
        ("raw sink", [run.ratios for run in runs], [run.rounds for run in runs]),
        (
            "sink flushed at the end",
            [run.flushed for run in runs],
            [run.flushed_rounds for run in runs],
        ),
    ]
    for baseline, run_ratios, run_rounds in against:
        for key, floor in RATIO_FLOORS.items():
            ratios = [by_key[key] for by_key in run_ratios if key in by_key]
            if not ratios:
                continue
            rounds = [r for by_key in run_rounds for r in by_key.get(key, [])]
            label = next(run.labels[key] for run in runs if key in run.labels)
            line = (
                f"service / {baseline} >= {floor}, {label}: met in "
                f"{sum(r >= floor for r in ratios)} of {len(ratios)} runs "
                f"({min(ratios):.2f} to {max(ratios):.2f}, median {median(ratios):.2f})"
            )
            if rounds:
                line += f"; {sum(r >= floor for r in rounds)} of {len(rounds)} rounds"
            lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--since", help="only runs of code that contains this commit")
    args = parser.parse_args(argv)
    runs = load_runs(args.results_dir)
    if args.since:
        if not is_commit(args.since):
            print(f"bench.history: {args.since!r} is not a commit here", file=sys.stderr)
            return 2
        runs = [run for run in runs if contains(run.commit, args.since)]
    if not runs:
        print(f"no saved full runs in {args.results_dir}")
        return 1
    print(table(runs))
    print()
    print("\n".join(tally(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
