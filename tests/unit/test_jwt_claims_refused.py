"""Tokens the service refuses however well they are signed, and secrets it refuses to start with."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from pydantic import SecretStr, ValidationError

from video_upload.config import Settings
from video_upload.domain.errors import ServiceError
from video_upload.http.auth import Authenticator

SECRET = "unit-test-secret-0123456789abcdef-0123"


def settings(tmp_path: Path, audience: str = "") -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path, jwt_secret=SecretStr(SECRET), jwt_audience=audience
    )


def bearer(claims: dict[str, object]) -> str:
    return "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")


def test_a_token_with_an_audience_is_refused_when_none_is_configured(tmp_path: Path) -> None:
    token = bearer({"sub": "alice", "exp": int(time.time()) + 60, "aud": "another-service"})
    with pytest.raises(ServiceError) as refused:
        Authenticator(settings(tmp_path)).user_from_header(token)
    assert refused.value.kind.status == 401


def test_a_token_with_the_configured_audience_is_accepted(tmp_path: Path) -> None:
    token = bearer({"sub": "alice", "exp": int(time.time()) + 60, "aud": "video-upload"})
    authenticator = Authenticator(settings(tmp_path, audience="video-upload"))
    assert authenticator.user_from_header(token) == "alice"


def test_a_token_whose_expiry_is_not_a_time_is_refused_with_401(tmp_path: Path) -> None:
    token = bearer({"sub": "alice", "exp": 10**400})
    with pytest.raises(ServiceError) as refused:
        Authenticator(settings(tmp_path)).user_from_header(token)
    assert refused.value.kind.status == 401


def test_a_short_hmac_secret_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings(_env_file=None, data_dir=tmp_path, jwt_secret=SecretStr("x"))  # type: ignore[call-arg]


def test_the_secret_never_shows_in_the_settings_repr(tmp_path: Path) -> None:
    assert SECRET not in repr(settings(tmp_path))
