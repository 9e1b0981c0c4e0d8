"""`video-upload upload` leaves the terminal as it found it when Ctrl-C stops it.

While the progress bar is drawn, rich hides the cursor; only stopping the bar shows it again. The
first two tests run the command in-process against a live server, writing to a recorded terminal
that "presses Ctrl-C" at the moments that used to leave the cursor hidden: as the bar's first
frame is drawn, and a second time while the bar is being taken down. The last runs the real
command in a pseudo-terminal, interrupts it mid-upload with SIGINT (what the terminal sends on
Ctrl-C) and runs it again to resume.
"""

from __future__ import annotations

import argparse
import io
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from rich.file_proxy import FileProxy

from tests.conftest import User
from tests.support.live import LiveServer
from video_upload.client import commands

HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"
MIB = 1024 * 1024

# The client behaves the same whatever the server stores bytes in: one backend is enough.
pytestmark = pytest.mark.parametrize("server", ["sqlite-local"], indirect=True)


class Terminal(io.StringIO):
    """What a terminal shows; the person at it presses Ctrl-C once `interrupt_on` is drawn."""

    def __init__(self, interrupt_on: str | None = None) -> None:
        super().__init__()
        self.interrupt_on = interrupt_on

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        written = super().write(text)
        if (
            self.interrupt_on is not None
            and self.interrupt_on in text
            and threading.current_thread() is threading.main_thread()  # where SIGINT lands
        ):
            self.interrupt_on = None
            signal.raise_signal(signal.SIGINT)
        return written

    @property
    def cursor_visible(self) -> bool:
        shown = self.getvalue()
        return shown.rfind(SHOW_CURSOR) >= shown.rfind(HIDE_CURSOR)


def run_upload(
    server: LiveServer, user: User, file: Path, session_id: str, console: Console
) -> int:
    """The `upload` command as `video-upload` runs it, drawing on `console`."""
    parser = argparse.ArgumentParser(prog="video-upload")
    commands.register(parser.add_subparsers(dest="command", required=True))
    options = ["--duration", "30", "--chunk-size", "64KiB"]
    connection = ["--url", server.base_url, "--token", user.token]
    args = parser.parse_args(["upload", str(file), "--session", session_id, *options, *connection])
    handler: Callable[[argparse.Namespace], int] = args.client_handler
    return handler(args)


@pytest.fixture
def terminal_session(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[[Terminal], Console]:
    """Makes the command draw on a given terminal; puts sys.stdout/stderr back afterwards (a
    bar left running keeps them redirected to itself)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)

    def use(terminal: Terminal) -> Console:
        console = Console(file=terminal, force_terminal=True, width=100, highlight=False)
        monkeypatch.setattr(commands, "_stderr", lambda: console)
        return console

    return use


def test_ctrl_c_as_the_bar_first_appears_gives_the_cursor_back(
    server: LiveServer,
    client: httpx.Client,
    user: User,
    session_id: str,
    tmp_path: Path,
    terminal_session: Callable[[Terminal], Console],
) -> None:
    file = tmp_path / "take.mp4"
    file.write_bytes(os.urandom(MIB))
    terminal = Terminal(interrupt_on=HIDE_CURSOR)  # the bar is starting: its first frame
    console = terminal_session(terminal)

    assert run_upload(server, user, file, session_id, console) == 130

    assert HIDE_CURSOR in terminal.getvalue(), "the bar never appeared"
    assert terminal.cursor_visible
    assert "interrupted" in terminal.getvalue()
    assert not isinstance(sys.stdout, FileProxy), "the bar still holds standard output"

    again = Terminal()
    assert run_upload(server, user, file, session_id, terminal_session(again)) == 0
    assert again.cursor_visible
    (video,) = client.get(f"/api/v1/sessions/{session_id}/videos", headers=user.bearer).json()
    assert video["status"] == "completed"


def test_a_second_ctrl_c_while_the_bar_is_taken_down_still_gives_the_cursor_back(
    server: LiveServer,
    user: User,
    session_id: str,
    tmp_path: Path,
    terminal_session: Callable[[Terminal], Console],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    file = tmp_path / "take.mp4"
    file.write_bytes(os.urandom(MIB))
    terminal = Terminal(interrupt_on=HIDE_CURSOR)
    console = terminal_session(terminal)
    clear_live = console.clear_live

    def pressed_again() -> None:  # the first thing rich does when it takes the bar down
        signal.raise_signal(signal.SIGINT)
        clear_live()

    monkeypatch.setattr(console, "clear_live", pressed_again)

    assert run_upload(server, user, file, session_id, console) == 130
    assert terminal.cursor_visible


# -- the real command in a pseudo-terminal -------------------------------------------------


def read_until(fd: int, seen: bytearray, done: Callable[[], bool], timeout: float) -> None:
    """Append what the terminal shows to `seen` until `done()` or the end of the output."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: every process holding the terminal has exited
            return
        if not data:
            return
        seen += data


def test_ctrl_c_in_a_terminal_mid_upload_restores_the_cursor_and_the_rerun_resumes(
    server: LiveServer, client: httpx.Client, user: User, session_id: str, tmp_path: Path
) -> None:
    file = tmp_path / "scales.mp4"
    file.write_bytes(os.urandom(24 * MIB))
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("JWT_")},
        "VIDEO_UPLOAD_URL": server.base_url,
        "VIDEO_UPLOAD_TOKEN": user.token,
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "DATA_DIR": str(tmp_path / "cli-data"),
        "TERM": "xterm-256color",
        "COLUMNS": "100",
    }
    args = [sys.executable, "-m", "video_upload", "upload", str(file), "--session", session_id]
    args += ["--duration", "30", "--chunk-size", "128KiB"]
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        args,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        start_new_session=True,
    )
    os.close(follower)
    seen = bytearray()
    try:

        def uploading() -> bool:
            if HIDE_CURSOR.encode() not in seen:
                return False
            listed = client.get(f"/api/v1/sessions/{session_id}/videos", headers=user.bearer)
            return bool(listed.json()) and listed.json()[0]["offset"] > 0

        read_until(leader, seen, uploading, timeout=60)
        assert process.poll() is None, f"the upload ended first: {seen.decode(errors='replace')}"
        os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        read_until(leader, seen, lambda: False, timeout=60)
        status = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)

    shown = seen.decode(errors="replace")
    assert status == 130, shown
    assert "interrupted" in shown
    assert shown.rfind(SHOW_CURSOR) > shown.rfind(HIDE_CURSOR)
    (video,) = client.get(f"/api/v1/sessions/{session_id}/videos", headers=user.bearer).json()
    assert 0 < video["offset"] < file.stat().st_size, "the interrupt did not land mid-upload"

    again = subprocess.run(
        args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False
    )
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr
    assert again.stdout.strip() == video["id"]
