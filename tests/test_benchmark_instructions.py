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
