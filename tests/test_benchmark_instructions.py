"""`python -m bench.instructions`: instructions per PATCH, counted by callgrind.

The count is what makes a change worth a few percent of a PATCH visible on these noisy machines,
so the tests pin that each target's counted PATCHes, and nothing else, end up under its name.
The real run uses only the two sinks (the service alone takes minutes to import under
callgrind); it needs valgrind, which `make test` installs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench import instructions
from bench.stats import KIB

IN_CI = os.environ.get("CI", "").lower() == "true"


def _dump(path: Path, trigger: str, summary: int) -> None:
    path.write_text(
        f"version: 1\ncreator: callgrind-3.19.0\ndesc: Trigger: {trigger}\n"
        f"events: Ir\nsummary: {summary}\n"
    )


def test_only_the_counted_dumps_are_read_each_under_its_target(tmp_path: Path) -> None:
    out = tmp_path / "callgrind.out"
    _dump(out, "Program termination", 10_000_000_000)
    _dump(tmp_path / "callgrind.out.1", "Client Request: before sink", 900_000_000)
    _dump(tmp_path / "callgrind.out.2", "Client Request: counted sink", 300_000)
    _dump(tmp_path / "callgrind.out.3", "Client Request: before service", 5_000)
    _dump(tmp_path / "callgrind.out.4", "Client Request: counted service", 3_000_000)
    _dump(tmp_path / "unrelated.out.5", "Client Request: counted other", 1)

    assert instructions.read_dumps(out) == {"sink": 300_000, "service": 3_000_000}


def test_report_gives_millions_per_patch_and_the_service_over_the_flushed_sink() -> None:
    text = instructions.report(
        {"service": 1_646_000.0, "sink": 244_000.0, "sink_durable": 265_000.0},
        1024 * KIB,
        64 * KIB,
        20,
    )

    assert text.splitlines()[1:] == [
        "  service                        1.646 million",
        "  raw sink                       0.244 million",
        "  sink flushed at the end        0.265 million",
        "  service minus sink flushed at the end: 1.381 million",
    ]


def test_unknown_targets_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        instructions.main(["--targets", "sink,nginx"])
    assert exit_.value.code == 2
    assert "unknown targets ['nginx']" in capsys.readouterr().err


def test_sinks_counted_under_callgrind_per_patch() -> None:
    if shutil.which("valgrind") is None:
        if IN_CI:
            pytest.fail("valgrind is missing (make test installs it)")
        pytest.skip("valgrind is not installed")

    per_patch = instructions.count(64 * KIB, 64 * KIB, 2, ("sink", "sink_durable"))

    # A 64 KiB PATCH costs the raw sink tens of thousands of instructions, not the process's
    # start-up (hundreds of millions): only the counted PATCHes are in the figure. The flushed
    # sink does what the raw one does and starts the writeback too.
    assert 10_000 < per_patch["sink"] < 2_000_000
    assert per_patch["sink"] < per_patch["sink_durable"] < 2_000_000


PERF_MAP_TEXT = """\
7f0000001000 b py::patch:/work/main/src/video_upload/tus/routes.py
7f0000001010 b py::UploadService.write:/work/main/src/video_upload/uploads/service.py
7f0000002000 b py::send_patch:/work/main/bench/asgi_calls.py
"""

ANNOTATED = """\
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
40,000,000 (100.0%)  PROGRAM TOTALS
39,000,000 (97.50%)  /src/Python/ceval.c:_PyEval_EvalFrameDefault [/lib/libpython3.12.so]
22,000,000 (55.00%)  ???:0x00007f0000002004 [???]
20,000,000 (50.00%)  ???:0x00007f0000001000 [???]
18,000,000 (45.00%)  ???:0x00007f000000101a [???]
 9,000,000 (22.50%)  ???:0x00007f0000003000 [???]
 1,000,000 ( 2.50%)  ???:sqlite3_step [/usr/lib/libsqlite3.so]
"""


def test_by_function_names_each_trampoline_by_the_perf_map_and_costs_it_per_patch() -> None:
    from bench.by_function import PerfMap, python_functions

    perf_map = PerfMap.parse(PERF_MAP_TEXT)
    assert perf_map.name_at(0x7F0000001005).endswith("tus/routes.py")  # type: ignore[union-attr]
    assert perf_map.name_at(0x7F000000101B) is None  # past the second trampoline's 11 bytes
    assert perf_map.name_at(0x7F0000000FFF) is None
    rows = python_functions(ANNOTATED, perf_map, patches=20)
    assert [name.rsplit(":", 1)[0] for _, name in rows] == [
        "py::send_patch",
        "py::patch",
        "py::UploadService.write",
    ]
    assert [cost for cost, _ in rows] == [1_100_000, 1_000_000, 900_000]
