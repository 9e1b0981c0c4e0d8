"""Ctrl-C while `video-upload` is still importing its modules ends it quietly with 130."""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

import pytest

from video_upload.__main__ import run


class InterruptedImport(importlib.abc.MetaPathFinder):
    """Raises KeyboardInterrupt when the command line's module is imported, as Ctrl-C does
    when it lands during the imports."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "video_upload.cli":
            raise KeyboardInterrupt
        return None


def test_ctrl_c_during_the_imports_ends_with_130_and_no_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delitem(sys.modules, "video_upload.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [InterruptedImport(), *sys.meta_path])

    assert run() == 130
    assert capsys.readouterr().err == "interrupted\n"
