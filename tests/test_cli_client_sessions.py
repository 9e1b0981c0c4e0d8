"""`video-upload sessions create NAME` and `video-upload sessions list` against a live server.

`create` prints only the new session's id on standard output, so `upload --session` can take it
without curl. `list` needs `GET /api/v1/sessions`; a server without that route gets a clear
message, not a traceback (one of the two listing tests applies, depending on the server).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import User
from tests.support.live import LiveServer

# The client behaves the same whatever the server stores bytes in: one backend is enough.
pytestmark = pytest.mark.parametrize("server", ["sqlite-local"], indirect=True)


def client_env(server: LiveServer, user: User, home: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("JWT_")}
    environment.update(
        VIDEO_UPLOAD_URL=server.base_url,
        VIDEO_UPLOAD_TOKEN=user.token,
        XDG_DATA_HOME=str(home / "xdg"),
        DATA_DIR=str(home / "cli-data"),
    )
    return environment


def video_upload(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "video_upload", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_create_prints_the_new_sessions_id_which_upload_accepts(
    server: LiveServer, client: httpx.Client, user: User, tmp_path: Path
) -> None:
    env = client_env(server, user, tmp_path)
    created = video_upload(env, tmp_path, "sessions", "create", "Scales, 3 March")
    assert created.returncode == 0, created.stderr
    session_id = created.stdout.strip()
    assert session_id in created.stderr  # with the upload command to use it
    session = client.get(f"/api/v1/sessions/{session_id}", headers=user.bearer)
    assert session.status_code == 200, session.text
    assert session.json()["name"] == "Scales, 3 March"
    assert session.json()["user_id"] == user.id

    take = tmp_path / "take.mp4"
    take.write_bytes(os.urandom(4096))
    uploaded = video_upload(
        env, tmp_path, "upload", str(take), "--session", session_id, "--duration", "12"
    )
    assert uploaded.returncode == 0, uploaded.stderr
    (video,) = client.get(f"/api/v1/sessions/{session_id}/videos", headers=user.bearer).json()
    assert video["id"] == uploaded.stdout.strip()


def test_url_and_token_options_win_over_the_environment(
    server: LiveServer, client: httpx.Client, user: User, tmp_path: Path
) -> None:
    env = {
        **client_env(server, user, tmp_path),
        "VIDEO_UPLOAD_URL": "http://127.0.0.1:9",  # nothing listens on the discard port
        "VIDEO_UPLOAD_TOKEN": "not-a-token",
    }
    created = video_upload(
        env,
        tmp_path,
        "sessions",
        "create",
        "Arpeggios",
        "--url",
        server.base_url,
        "--token",
        user.token,
    )
    assert created.returncode == 0, created.stderr
    found = client.get(f"/api/v1/sessions/{created.stdout.strip()}", headers=user.bearer)
    assert found.json()["name"] == "Arpeggios"


def test_refused_or_tokenless_creation_is_reported_without_a_traceback(
    server: LiveServer, user: User, tmp_path: Path
) -> None:
    env = client_env(server, user, tmp_path)
    too_long = video_upload(env, tmp_path, "sessions", "create", "x" * 300)
    assert too_long.returncode == 1
    assert "cannot create the session: 422" in too_long.stderr
    assert too_long.stdout == ""
    no_token = video_upload({**env, "VIDEO_UPLOAD_TOKEN": ""}, tmp_path, "sessions", "list")
    assert no_token.returncode == 1
    assert "VIDEO_UPLOAD_TOKEN" in no_token.stderr
    bad_token = video_upload(
        {**env, "VIDEO_UPLOAD_TOKEN": "not-a-token"}, tmp_path, "sessions", "create", "Scales"
    )
    assert bad_token.returncode == 1
    assert "401" in bad_token.stderr
    for result in (too_long, no_token, bad_token):
        assert "Traceback" not in result.stderr


def test_list_shows_the_users_sessions_as_a_table_and_as_json(
    server: LiveServer, client: httpx.Client, user: User, other_user: User, tmp_path: Path
) -> None:
    env = client_env(server, user, tmp_path)
    ids = [
        video_upload(env, tmp_path, "sessions", "create", name).stdout.strip()
        for name in ("Scales", "Bach partita")
    ]
    video_upload(
        client_env(server, other_user, tmp_path), tmp_path, "sessions", "create", "Not mine"
    )

    table = video_upload(env, tmp_path, "sessions", "list")
    assert table.returncode == 0, table.stderr
    for text in (*ids, "Scales", "Bach partita"):
        assert text in table.stdout
    assert "Not mine" not in table.stdout

    as_json = video_upload(env, tmp_path, "sessions", "list", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert sorted(session["id"] for session in json.loads(as_json.stdout)) == sorted(ids)


def test_client_commands_need_none_of_the_servers_settings(
    server: LiveServer, user: User, tmp_path: Path
) -> None:
    """On a laptop whose environment holds settings the server would refuse (a JWT secret too
    short to serve with), the client still runs, and leaves nothing in DATA_DIR."""
    env = {**client_env(server, user, tmp_path), "JWT_SECRET": "too-short"}
    created = video_upload(env, tmp_path, "sessions", "create", "Arpeggios")
    listed = video_upload(env, tmp_path, "sessions", "list", "--json")
    assert created.returncode == 0, created.stderr
    assert listed.returncode == 0, listed.stderr
    assert created.stdout.strip() in {str(session["id"]) for session in json.loads(listed.stdout)}
    assert not (tmp_path / "cli-data").exists()
