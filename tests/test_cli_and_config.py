"""The `video-upload` command and the embedded defaults a new user starts with."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from pydantic import SecretStr

from video_upload.config import Settings
from video_upload.domain.errors import ServiceError
from video_upload.http.auth import Authenticator


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`video-upload ARGS` in `cwd`, without this machine's JWT and data settings."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("JWT_", "DATA"))
    }
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "video_upload", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = cli(*args, cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_token_without_configured_secret_generates_one_kept_private(tmp_path: Path) -> None:
    token = run_cli("token", "--user", "alice", "--ttl", "120", cwd=tmp_path).strip()
    secret_file = tmp_path / "data" / "jwt_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    claims = jwt.decode(token, secret_file.read_text().strip(), algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 120
    again = run_cli("token", "--user", "bob", cwd=tmp_path).strip()
    assert jwt.decode(again, secret_file.read_text().strip(), algorithms=["HS256"])["sub"] == "bob"


def test_token_is_accepted_by_a_server_with_the_same_settings(tmp_path: Path) -> None:
    token = run_cli("token", "--user", "carol", cwd=tmp_path).strip()
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    assert Authenticator(settings).user_from_header(f"Bearer {token}") == "carol"


def test_migrate_creates_the_schema_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    output = run_cli("migrate", cwd=tmp_path)
    assert "up to date" in output
    with sqlite3.connect(tmp_path / "data" / "video-upload.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"practice_sessions", "videos", "alembic_version"} <= tables
    run_cli("migrate", cwd=tmp_path)  # idempotent


def test_rs256_tokens_verify_with_the_public_key(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path,
        jwt_algorithm="RS256",
        jwt_public_key=public_pem,
        jwt_private_key=SecretStr(private_pem),
        jwt_audience="video-upload",
        jwt_issuer="auth.example",
    )
    authenticator = Authenticator(settings)
    token = authenticator.mint("dave")
    assert authenticator.user_from_header(f"Bearer {token}") == "dave"
    wrong_audience = jwt.encode(
        {"sub": "dave", "exp": 4102444800, "aud": "other", "iss": "auth.example"},
        private_pem,
        algorithm="RS256",
    )
    with pytest.raises(ServiceError):
        authenticator.user_from_header(f"Bearer {wrong_audience}")


def test_serve_exits_with_an_error_when_the_database_cannot_be_migrated(tmp_path: Path) -> None:
    unreachable = "postgresql+asyncpg://nobody@127.0.0.1:1/nothing"  # connection refused
    result = cli("serve", "--port", "1", cwd=tmp_path, env={"DATABASE_URL": unreachable})
    assert result.returncode == 1
    assert "the database could not be migrated" in result.stderr
    assert "Uvicorn running" not in result.stderr  # it never started serving


def test_nodes_starting_at_once_all_migrate_a_fresh_postgresql_database(
    postgres_url: str, tmp_path: Path
) -> None:
    from tests.support import postgres

    fresh = postgres.create_database()
    try:
        env = {
            key: value for key, value in os.environ.items() if not key.startswith(("JWT_", "DATA"))
        }
        env["DATABASE_URL"] = fresh
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "video_upload", "migrate"],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(3)
        ]
        outputs = [run.communicate(timeout=120)[0].decode(errors="replace") for run in runs]
        assert [run.returncode for run in runs] == [0, 0, 0], outputs
    finally:
        postgres.drop_database(fresh)


def test_token_accepted_before_is_refused_once_it_expires(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, jwt_secret=SecretStr("s" * 32))  # type: ignore[call-arg]
    now = [time.time()]
    authenticator = Authenticator(settings, clock=lambda: now[0])
    token = authenticator.mint("erin", ttl_seconds=60)
    assert authenticator.user_from_header(f"Bearer {token}") == "erin"
    assert authenticator.user_from_header(f"Bearer {token}") == "erin"  # the remembered verdict
    now[0] += 61
    with pytest.raises(ServiceError) as refused:
        authenticator.user_from_header(f"Bearer {token}")
    assert refused.value.kind.status == 401
    assert "expired" in refused.value.kind.message


def test_altered_copy_of_an_accepted_token_is_refused(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, jwt_secret=SecretStr("s" * 32))  # type: ignore[call-arg]
    authenticator = Authenticator(settings)
    token = authenticator.mint("frank")
    assert authenticator.user_from_header(f"Bearer {token}") == "frank"
    header, payload, signature = token.split(".")
    forged_payload = jwt.utils.base64url_encode(b'{"sub":"mallory","exp":4102444800}').decode()
    other_first = "B" if signature[0] == "A" else "A"  # (the last character may be padding bits)
    for forged in (
        f"{header}.{forged_payload}.{signature}",
        f"{header}.{payload}.{other_first}{signature[1:]}",
    ):
        with pytest.raises(ServiceError) as refused:
            authenticator.user_from_header(f"Bearer {forged}")
        assert refused.value.kind.status == 401


def test_local_storage_fsync_setting_reaches_the_store_and_rejects_unknown_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from pydantic import ValidationError

    from video_upload.storage.factory import open_store
    from video_upload.storage.local import LocalStore

    monkeypatch.setenv("LOCAL_STORAGE_PATH", str(tmp_path / "uploads"))
    assert Settings(_env_file=None).local_storage_fsync == "finish"  # type: ignore[call-arg]
    monkeypatch.setenv("LOCAL_STORAGE_FSYNC", "chunk")
    store = asyncio.run(open_store(Settings(_env_file=None)))  # type: ignore[call-arg]
    assert isinstance(store, LocalStore)
    assert store.sync == "chunk"
    monkeypatch.setenv("LOCAL_STORAGE_FSYNC", "always")
    with pytest.raises(ValidationError, match="local_storage_fsync"):
        Settings(_env_file=None)  # type: ignore[call-arg]
