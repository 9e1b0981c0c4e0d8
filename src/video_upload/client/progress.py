"""What the uploader shows in a terminal: a rich progress bar, notes, and the videos table."""

from __future__ import annotations

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

    def __enter__(self) -> ProgressReporter:
        return self  # the bar appears with the first byte range, not before

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.task is not None:
            self.progress.stop()

    def started(self, total: int, offset: int, resumed: bool) -> None:
        if resumed:
            self.note(f"resuming {self.label} at byte {offset} of {total}")
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total, completed=offset)
        else:
            self.progress.reset(self.task, total=total, completed=offset)

    def advanced(self, offset: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=offset)

    def note(self, message: str) -> None:
        self.progress.console.print(message)


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
