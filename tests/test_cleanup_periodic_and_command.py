"""How cleanup is run: the in-process periodic task (off by default; a failing round does not
stop it, and it stops with the app) and the `video-upload cleanup` command, which cleans once
and prints the counts.

The periodic task is tested on its own and in a sqlite-local server started for it, the command
on a SQLite database of its own; the one test on the shared server is marked `any_backend` and
runs on one back end (see conftest).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import User, make_settings
from tests.support.cleanup import storage_of, upload_id_of, write
from tests.support.live import LiveServer, expired_clock, start_server
from tests.support.tus import create_upload
from video_upload.lifecycle.cleanup import CleanupReport
from video_upload.lifecycle.periodic import PeriodicCleanup
from video_upload.persistence.engine import migrate
from video_upload.persistence.models import VideoRow

# -- the periodic task and the command -------------------------------------------------------------


@pytest.mark.any_backend
def test_periodic_cleanup_is_off_by_default(server: LiveServer) -> None:
    assert server.settings.cleanup_interval_minutes == 0
    assert server.app.state.cleanup is None


async def test_periodic_cleanup_survives_a_failing_round_and_stops_cleanly() -> None:
    calls = 0

    async def flaky() -> CleanupReport:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        return CleanupReport(expired=calls)

    periodic = PeriodicCleanup(flaky, interval_seconds=0)
    periodic.start()
    try:
        await periodic.wait_rounds(3)
        assert periodic.running
    finally:
        await periodic.stop()
    assert not periodic.running
    assert periodic.failures == 1
    assert periodic.last_report is not None and periodic.last_report.expired >= 3


def test_app_runs_the_cleanup_periodically_when_an_interval_is_set(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = make_settings(request, tmp_path, "sqlite-local", cleanup_interval_minutes=0.0005)
    live = start_server("periodic", settings)
    try:
        periodic = live.app.state.cleanup
        assert isinstance(periodic, PeriodicCleanup) and periodic.running
        user = User("periodic-user", live.token("periodic-user"))
        with httpx.Client(base_url=live.base_url, timeout=60) as client:
            made = client.post("/api/v1/sessions", json={"name": "x"}, headers=user.bearer)
            url = create_upload(client, user.headers, made.json()["id"], 20)
            write(client, user, url, 0, b"p" * 5)
            with expired_clock(live):
                live.run(periodic.wait_rounds(2))  # at least one whole round after the move
            assert client.head(url, headers=user.headers).status_code == 410
        assert storage_of(live, upload_id_of(url)) == []
    finally:
        live.stop()
    assert not periodic.running  # cancelled with the app


def cli_command() -> list[str]:
    """`video-upload` as installed in this environment (what `uv run video-upload` runs)."""
    script = shutil.which("video-upload", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "video_upload"]


def run_cleanup_command(tmp_path: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    settings_prefixes = ("JWT_", "DATA", "STORAGE", "LOCAL_", "S3_", "AWS_", "UPLOAD_", "CLEANUP_")
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(settings_prefixes)
    }
    environment.update(
        DATABASE_URL=database_url,
        DATA_DIR=str(tmp_path / "data"),
        LOCAL_STORAGE_PATH=str(tmp_path / "uploads"),
        STORAGE_BACKEND="local",
    )
    return subprocess.run(
        [*cli_command(), "cleanup"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cleanup_command_cleans_once_and_prints_the_counts(tmp_path: Path) -> None:
    database = tmp_path / "data" / "video-upload.db"
    database.parent.mkdir(parents=True)
    migrate(f"sqlite+aiosqlite:///{database}")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    now = datetime.now(UTC)
    two_days_ago = (now - timedelta(days=2)).timestamp()

    def video(upload_id: str, *, expires: datetime | None, completed: bool = False) -> VideoRow:
        (uploads / upload_id).write_bytes(b"bytes of " + upload_id.encode())
        os.utime(uploads / upload_id, (two_days_ago, two_days_ago))
        return VideoRow(
            id=uuid.uuid4(),
            user_id="cli-user",
            upload_id=upload_id,
            storage_key=upload_id,
            upload_offset=100 if completed else 3,
            upload_length=100,
            upload_completed=completed,
            upload_metadata={},
            upload_expires_at=expires,
            status="uploaded" if completed else "uploading",
            created_at=now - timedelta(days=2),
            updated_at=now - timedelta(days=2),
        )

    rows = [
        video("expired-one", expires=now - timedelta(hours=1)),
        video("expired-two", expires=now - timedelta(days=1)),
        video("still-active", expires=now + timedelta(hours=3)),
        video("finished", expires=None, completed=True),
    ]
    engine = create_sync_engine(f"sqlite:///{database}")
    with Session(engine) as db:
        db.add_all(rows)
        db.commit()
    (uploads / "orphan").write_bytes(b"nobody knows me")
    os.utime(uploads / "orphan", (two_days_ago, two_days_ago))
    (uploads / "fresh-orphan").write_bytes(b"maybe a row is on its way")

    result = run_cleanup_command(tmp_path, f"sqlite+aiosqlite:///{database}")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cleaned 2 expired uploads, removed 1 orphan"
    remaining = sorted(path.name for path in uploads.iterdir())
    assert remaining == ["finished", "fresh-orphan", "still-active"]
    with Session(engine) as db:
        statuses = {
            upload_id: status
            for upload_id, status in db.execute(select(VideoRow.upload_id, VideoRow.status)).all()
        }
    engine.dispose()
    assert statuses == {
        "expired-one": "expired",
        "expired-two": "expired",
        "still-active": "uploading",
        "finished": "uploaded",
    }
    again = run_cleanup_command(tmp_path, f"sqlite+aiosqlite:///{database}")
    assert again.stdout.strip() == "cleaned 0 expired uploads, removed 0 orphans"


def test_cleanup_command_reports_an_unusable_database_and_fails(tmp_path: Path) -> None:
    result = run_cleanup_command(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}")
    assert result.returncode == 1
    assert "cleanup failed" in result.stderr
    assert result.stdout == ""
