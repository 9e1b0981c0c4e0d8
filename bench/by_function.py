"""Instructions per PATCH by Python function: `bench.instructions` under CPython 3.12's perf
trampolines.

callgrind puts everything the interpreter runs under its bytecode loop, so `bench.instructions`
says how much a PATCH costs but not where. From CPython 3.12, `PYTHONPERFSUPPORT=1` gives every
Python function a small trampoline of machine code of its own, at an address the process lists
in `/tmp/perf-<pid>.map`, and sends every Python call through it. Under callgrind each
trampoline is then a function whose inclusive count is that Python function's, callees
included. This runs the service's counted PATCHes that way and prints the Python functions that
cost the most per PATCH, inclusive:

    make test-python PY=/path/to/python3.12      # once: a 3.12 venv with the project
    .venv-python3.12/bin/python -m bench.by_function --chunk-kib 4

The shares are a map, not a measurement of 3.11: with every call going through a trampoline,
small functions cost more than they do on 3.11 (a 4 KiB PATCH: 1.67 million instructions against
1.37 when this was written). Weigh each change on 3.11 with `bench.instructions` afterwards.
"""

from __future__ import annotations

import argparse
import bisect
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import instructions
from bench.procs import REPO_ROOT

# callgrind_annotate's lines: "  1,234,567 (12.34%)  file:function [object]"
_ANNOTATED = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$")
_ADDRESS = re.compile(r"0x([0-9a-fA-F]+)")


@dataclass(frozen=True)
class PerfMap:
    """Trampoline address ranges and the Python functions they stand for."""

    starts: list[int]
    ends: list[int]
    names: list[str]

    @classmethod
    def parse(cls, text: str) -> PerfMap:
        """A perf map: one `<start hex> <size hex> <name>` per line."""
        entries = []
        for line in text.splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3:
                start, size = int(parts[0], 16), int(parts[1], 16)
                entries.append((start, start + size, parts[2]))
        entries.sort()
        return cls(
            [start for start, _, _ in entries],
            [end for _, end, _ in entries],
            [name for _, _, name in entries],
        )

    def name_at(self, address: int) -> str | None:
        index = bisect.bisect_right(self.starts, address) - 1
        if index >= 0 and address < self.ends[index]:
            return self.names[index]
        return None


def python_functions(annotated: str, perf_map: PerfMap, patches: int) -> list[tuple[float, str]]:
    """Inclusive instructions per PATCH of each Python function in `callgrind_annotate`'s
    output (functions callgrind could not name, looked up in `perf_map`), costliest first."""
    rows: list[tuple[float, str]] = []
    for line in annotated.splitlines():
        match = _ANNOTATED.match(line)
        if match is None or "???" not in match.group(2):
            continue
        address = _ADDRESS.search(match.group(2))
        name = perf_map.name_at(int(address.group(1), 16)) if address else None
        if name is not None:
            rows.append((int(match.group(1).replace(",", "")) / patches, name))
    rows.sort(key=lambda row: -row[0])
    return rows


def report(rows: list[tuple[float, str]], total: float, top: int) -> str:
    root = f"{REPO_ROOT}{os.sep}"
    lines = [f"service: {total / 1e6:.3f} million instructions per PATCH (CPython 3.12, perf)"]
    lines.append(f"{'per PATCH':>12}  Python function (inclusive)")
    for cost, name in rows[:top]:
        lines.append(f"{cost:12,.0f}  {name.removeprefix('py::').replace(root, '')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.by_function", description=__doc__)
    instructions.add_patch_arguments(parser)
    parser.add_argument("--top", type=int, default=60, help="how many functions to list")
    args = parser.parse_args(argv)
    if sys.version_info < (3, 12):
        print(
            "bench.by_function needs CPython 3.12 or later (perf trampolines); run it with "
            "the venv of `make test-python PY=/path/to/python3.12`",
            file=sys.stderr,
        )
        return 2
    annotate = shutil.which("callgrind_annotate")
    if annotate is None:
        print("bench.by_function: callgrind_annotate (valgrind) is missing", file=sys.stderr)
        return 2
    chunk_size, message_size = instructions.patch_sizes(args)
    os.environ["PYTHONPERFSUPPORT"] = "1"  # for the counted child, which inherits it
    with tempfile.TemporaryDirectory(prefix="bench-by-function-") as scratch:
        keep = Path(scratch)
        try:
            per_patch = instructions.count(
                chunk_size, message_size, args.patches, ("service",), keep
            )
        except instructions.InstructionsUnavailable as error:
            print(f"bench.by_function: {error}", file=sys.stderr)
            return 2
        _, dump = instructions.counted_dumps(keep / "callgrind.out")["service"]
        if not (keep / instructions.PERF_MAP).exists():
            print("bench.by_function: the counted process wrote no perf map", file=sys.stderr)
            return 2
        perf_map = PerfMap.parse((keep / instructions.PERF_MAP).read_text())
        annotated = subprocess.run(
            [annotate, "--inclusive=yes", "--threshold=100", str(dump)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rows = python_functions(annotated, perf_map, args.patches)
    print(report(rows, per_patch["service"], args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
