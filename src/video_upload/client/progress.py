"""What the client shows in a terminal: a rich progress bar, notes, the sessions and videos tables.

While the bar is drawn, rich hides the terminal's cursor; only `Progress.stop()` shows it again.
So the bar is stopped on every way out of the upload (`ProgressReporter` is a context manager),
and starting or stopping it is never cut in half by Ctrl-C: a rich display interrupted midway
through its start cannot be stopped at all (it fails, leaving the cursor hidden). A Ctrl-C pressed
in those few milliseconds is held, and interrupts as usual the moment they are over.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from rich.box import SIMPLE
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table


class ProgressReporter:
    """The uploader's `Reporter`: one bar per upload, notes printed above it."""

    def __init__(self, console: Console, label: str) -> None:
        self.console = console
        self.label = label
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task: TaskID | None = None
        self.shown = False  # whether the bar (and so the hidden cursor) may be on the screen

    def __enter__(self) -> ProgressReporter:
        return self  # the bar appears with the first byte range, not before

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Take the bar down and show the cursor again (once; later calls do nothing)."""
        with sigint_deferred():
            if self.shown:
                self.progress.stop()
                self.shown = False

    def started(self, total: int, offset: int, resumed: bool) -> None:
        if resumed:
            self.note(f"resuming {self.label} at byte {offset} of {total}")
        if self.task is None:
            with sigint_deferred():
                self.shown = True
                self.progress.start()
                self.task = self.progress.add_task(self.label, total=total, completed=offset)
        else:
            self.progress.reset(self.task, total=total, completed=offset)

    def advanced(self, offset: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=offset)

    def note(self, message: str) -> None:
        self.progress.console.print(message)


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Ctrl-C inside the block waits for its end, then goes to the usual handler (in the main
    thread; elsewhere signal handlers cannot be changed, and SIGINT never lands there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, _frame: pressed.append(number))
    try:
        yield
    finally:
        # None: a handler installed outside Python, which Python cannot put back.
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
    if pressed:
        signal.raise_signal(signal.SIGINT)  # as if pressed now: KeyboardInterrupt, usually


def human_size(size: int) -> str:
    """Bytes in binary units: 512 B, 1.5 KiB, 31.0 MiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # unreachable: the loop always returns


def videos_table(videos: list[dict[str, Any]], session_id: str) -> Table:
    table = Table(title=f"videos in session {session_id}", title_justify="left", box=SIMPLE)
    table.add_column("id", no_wrap=True)
    table.add_column("filename", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("percentage", justify="right", no_wrap=True)
    for video in videos:
        size = video.get("size")
        table.add_row(
            str(video.get("id", "")),
            str(video.get("filename", "")),
            str(video.get("status", "")),
            human_size(size) if isinstance(size, int) else "-",
            f"{float(video.get('percentage') or 0):.1f}%",
        )
    if not videos:
        table.caption = "no videos yet"
    return table


def sessions_table(sessions: list[dict[str, Any]]) -> Table:
    table = Table(title="practice sessions", title_justify="left", box=SIMPLE)
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("created (UTC)", no_wrap=True)
    for session in sessions:
        table.add_row(
            str(session.get("id", "")),
            str(session.get("name") or "-"),
            _timestamp(session.get("created_at")),
        )
    if not sessions:
        table.caption = "no sessions yet: make one with `video-upload sessions create NAME`"
    return table


def _timestamp(value: Any) -> str:
    """`2026-03-01T18:04:05.123456Z` → `2026-03-01 18:04:05` (the server's UTC time)."""
    if not isinstance(value, str) or not value:
        return "-"
    return value.replace("T", " ")[:19]
