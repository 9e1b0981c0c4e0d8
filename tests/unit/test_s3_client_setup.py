"""Opening the S3 store (`S3Store.open`): the client's configuration, before any request.

(An endpoint nobody answers is `tests/storage/test_s3_store_bucket.py`'s: its retries take
seconds.)
"""

from __future__ import annotations

from typing import Any

import pytest

from video_upload.config import Settings
from video_upload.storage.base import StorageError
from video_upload.storage.s3 import S3Store


def settings(**values: Any) -> Settings:
    defaults: dict[str, Any] = {
        "_env_file": None,
        "storage_backend": "s3",
        "s3_endpoint_url": "http://127.0.0.1:9",
        "aws_access_key_id": "unit",
        "aws_secret_access_key": "unit",
    }
    return Settings(**{**defaults, **values})


async def test_a_malformed_endpoint_is_refused_at_once_and_not_retried() -> None:
    with pytest.raises(StorageError) as raised:
        await S3Store.open(settings(s3_endpoint_url="not a url"))

    assert not raised.value.retryable


async def test_database_staging_without_the_database_is_refused_with_the_setting_named() -> None:
    with pytest.raises(StorageError, match="S3_STAGING=database") as raised:
        await S3Store.open(settings(s3_staging="database"))

    assert not raised.value.retryable
