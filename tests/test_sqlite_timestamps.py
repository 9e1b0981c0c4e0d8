"""Timestamps on SQLite: the service's one-step conversion (`db.models.UTCDateTime`) writes and
reads exactly what SQLAlchemy's own DATETIME does, so rows written before and after it, and
the text comparisons the lease statements make (`lock_expires_at < now`), keep their meaning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from video_upload.db.models import UTCDateTime

DIALECT = sqlite.dialect()
MOMENTS = [
    datetime(2026, 11, 25, 1, 21, 0, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2026, 11, 25, 1, 21, 0, 123456, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),  # a year of three digits is zero-padded
    datetime(2026, 3, 29, 2, 30, 0, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
]


def sqlalchemy_text(moment: datetime) -> str:
    processor = DateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
    assert processor is not None
    text: str = processor(moment.astimezone(UTC))
    return text


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_sqlite_timestamp_text_is_sqlalchemys_and_reads_back_as_the_same_instant(
    moment: datetime,
) -> None:
    column = UTCDateTime()
    write = column.bind_processor(DIALECT)
    read = column.result_processor(DIALECT, None)
    assert write is not None and read is not None
    text = write(moment)
    assert text == sqlalchemy_text(moment)
    back = read(text)
    assert back == moment
    assert back.tzinfo == UTC


def test_sqlite_timestamp_text_sorts_as_the_instants_do() -> None:
    write = UTCDateTime().bind_processor(DIALECT)
    assert write is not None
    ordered = sorted(MOMENTS)
    assert sorted(ordered, key=write) == ordered


@pytest.mark.parametrize(
    "stored",
    ["2026-11-25 01:21:00", "2026-11-25", "2026-11-25 01:21:00.5"],
    ids=["no-fraction", "date-only", "short-fraction"],
)
def test_sqlite_timestamps_in_other_forms_read_as_sqlalchemy_reads_them(stored: str) -> None:
    read = UTCDateTime().result_processor(DIALECT, None)
    layered = DateTime().dialect_impl(DIALECT).result_processor(DIALECT, None)
    assert read is not None and layered is not None
    expected = layered(stored)
    assert isinstance(expected, datetime)
    assert read(stored) == expected.replace(tzinfo=UTC)


def test_naive_timestamps_are_refused_on_sqlite() -> None:
    write = UTCDateTime().bind_processor(DIALECT)
    assert write is not None
    with pytest.raises(ValueError, match="naive"):
        write(datetime(2026, 11, 25, 1, 21))
    assert write(None) is None
    read = UTCDateTime().result_processor(DIALECT, None)
    assert read is not None
    assert read(None) is None
