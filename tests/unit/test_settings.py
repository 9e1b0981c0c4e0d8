"""Settings validation (`video_upload.config.Settings`): what the service refuses to start with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from video_upload.config import MIB, S3_MAX_PART_SIZE, S3_MIN_PART_SIZE, Settings


def build(**values: Any) -> Settings:
    return Settings(**{"_env_file": None, **values})


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings read the environment and `.env` in the working directory: start from neither."""
    for field in Settings.model_fields:
        monkeypatch.delenv(field.upper(), raising=False)
        monkeypatch.delenv(field, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_describe_the_embedded_service() -> None:
    settings = build()

    assert settings.storage_backend == "local"
    assert settings.resolved_database_url == "sqlite+aiosqlite:///data/video-upload.db"
    assert settings.max_upload_size == 500 * MIB
    assert settings.max_duration_seconds == 300
    assert settings.cors_origins == []
    assert settings.jwt_secret.get_secret_value() == ""


def test_a_database_url_when_set_wins_over_the_data_directory() -> None:
    url = "postgresql+asyncpg://u@h/db"

    assert build(database_url=url, data_dir=Path("/elsewhere")).resolved_database_url == url
    assert build(data_dir=Path("/srv/v")).resolved_database_url == (
        "sqlite+aiosqlite:////srv/v/video-upload.db"
    )


def test_environment_variables_are_read_whatever_their_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAX_VIDEO_SIZE_MB", "7")
    monkeypatch.setenv("storage_backend", "s3")
    monkeypatch.setenv("Jwt_Secret", "s" * 40)

    settings = build()

    assert (settings.max_upload_size, settings.storage_backend) == (7 * MIB, "s3")
    assert settings.jwt_secret.get_secret_value() == "s" * 40


def test_a_dotenv_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("UPLOAD_EXPIRATION_HOURS=0.5\n")

    assert Settings().upload_expiration_hours == 0.5


@pytest.mark.parametrize(
    ("prefix", "normalised"),
    [("uploads/", "uploads/"), ("videos", "videos/"), ("/a/b", "a/b/"), ("", ""), ("/", "")],
)
def test_the_s3_key_prefix_is_relative_and_ends_with_a_slash(prefix: str, normalised: str) -> None:
    assert build(s3_key_prefix=prefix).s3_key_prefix == normalised


def test_on_s3_the_suggested_chunk_is_a_whole_part_unless_one_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STORAGE_BACKEND", "s3")
    monkeypatch.setenv("S3_PART_SIZE", str(8 * MIB))
    assert build().upload_chunk_size == 8 * MIB  # a chunk of 5 MiB would cost two writes a part

    monkeypatch.setenv("UPLOAD_CHUNK_SIZE", str(MIB))
    assert build().upload_chunk_size == MIB  # what the operator set, for very flaky links

    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.delenv("UPLOAD_CHUNK_SIZE")
    assert build().upload_chunk_size == 5 * MIB  # the local store has no parts


def test_cors_origins_are_a_trimmed_comma_separated_list() -> None:
    settings = build(cors_allow_origins=" https://a.example , ,https://b.example")

    assert settings.cors_origins == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("s3_part_size", S3_MIN_PART_SIZE - 1),
        ("s3_part_size", S3_MAX_PART_SIZE + 1),
        ("s3_staging", "attic"),
        ("database_max_connections", 1),
        ("max_video_size_mb", 0),
        ("max_video_duration_minutes", 0),
        ("upload_expiration_hours", -1),
        ("upload_chunk_size", 0),
        ("cleanup_interval_minutes", -0.5),
        ("upload_lease_seconds", 0.5),
        ("storage_backend", "ftp"),
        ("local_storage_fsync", "always"),
        ("jwt_algorithm", "none"),
        ("video_probe", "perhaps"),
    ],
)
def test_a_value_out_of_range_or_unknown_is_refused_naming_its_setting(
    field: str, value: object
) -> None:
    with pytest.raises(ValidationError, match=field):
        build(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("s3_part_size", S3_MIN_PART_SIZE),
        ("s3_part_size", S3_MAX_PART_SIZE),
        ("database_max_connections", 2),
        ("cleanup_interval_minutes", 0),
        ("upload_lease_seconds", 1),
        ("upload_expiration_hours", 0.01),
    ],
)
def test_the_limits_themselves_are_accepted(field: str, value: object) -> None:
    assert getattr(build(**{field: value}), field) == value


def test_secrets_do_not_show_in_the_settings_repr() -> None:
    settings = build(jwt_private_key="private-key-text", aws_secret_access_key="aws-secret-text")

    assert "private-key-text" not in repr(settings)
    assert "aws-secret-text" not in repr(settings)


@pytest.mark.parametrize(("algorithm", "needed"), [("HS384", 48), ("HS512", 64)])
def test_a_jwt_secret_shorter_than_its_hash_is_refused(algorithm: str, needed: int) -> None:
    with pytest.raises(ValidationError, match=f"at least {needed} bytes long for {algorithm}"):
        build(jwt_algorithm=algorithm, jwt_secret="s" * (needed - 1))
    assert build(jwt_algorithm=algorithm, jwt_secret="s" * needed).jwt_algorithm == algorithm
