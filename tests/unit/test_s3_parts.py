"""The S3 store's bookkeeping (`video_upload.storage.s3_parts`): part plans, state, object names."""

from __future__ import annotations

import pytest

from video_upload.config import S3_MIN_PART_SIZE
from video_upload.storage.base import StorageError
from video_upload.storage.s3_parts import (
    MAX_PARTS,
    BufferedPart,
    CopyPart,
    Part,
    PlannedPart,
    Segment,
    Slice,
    UploadState,
    belongs_to,
    key_of,
    plan_concatenation,
    staging_key,
    staging_prefix,
)

MIN = 100  # a small minimum part size keeps the plans readable


def sizes(plan: list[PlannedPart]) -> list[int]:
    return [part.slice.size if isinstance(part, CopyPart) else part.size for part in plan]


def slices(plan: list[PlannedPart]) -> list[Slice]:
    out: list[Slice] = []
    for part in plan:
        out.extend([part.slice] if isinstance(part, CopyPart) else part.slices)
    return out


@pytest.mark.parametrize(
    "sources",
    [
        [("a", 250), ("b", 300)],
        [("a", 10), ("b", 20), ("c", 30)],
        [("a", 10), ("b", 500), ("c", 5), ("d", 99), ("e", 101)],
        [("a", 0), ("b", 150), ("c", 0)],
        [("a", 100), ("b", 100), ("c", 1)],
        [("a", 99), ("b", 1), ("c", 99), ("d", 2)],
    ],
)
def test_a_plan_covers_every_byte_once_in_order_with_every_part_but_the_last_big_enough(
    sources: list[tuple[str, int]],
) -> None:
    plan = plan_concatenation(sources, min_part=MIN)

    covered = [
        (piece.source, offset) for piece in slices(plan) for offset in range(piece.start, piece.end)
    ]
    assert covered == [(source, offset) for source, size in sources for offset in range(size)]
    assert all(size >= MIN for size in sizes(plan)[:-1])


def test_partials_big_enough_to_stand_alone_are_copied_whole_server_side() -> None:
    plan = plan_concatenation([("a", 250), ("b", 100), ("c", 7)], min_part=MIN)

    assert plan == [
        CopyPart(Slice("a", 0, 250)),
        CopyPart(Slice("b", 0, 100)),
        CopyPart(Slice("c", 0, 7)),
    ]


def test_a_small_partial_is_topped_up_from_the_head_of_the_next_and_the_rest_is_copied() -> None:
    plan = plan_concatenation([("a", 30), ("b", 500)], min_part=MIN)

    assert plan == [
        BufferedPart((Slice("a", 0, 30), Slice("b", 0, 70))),
        CopyPart(Slice("b", 70, 500)),
    ]


def test_a_buffered_part_never_holds_more_than_the_minimum_part_size() -> None:
    plan = plan_concatenation([("a", 60), ("b", 60), ("c", 60), ("d", 60)], min_part=MIN)

    assert all(part.size <= MIN for part in plan if isinstance(part, BufferedPart))
    assert sizes(plan) == [100, 100, 40]


def test_only_empty_partials_plan_no_part_at_all() -> None:
    assert plan_concatenation([("a", 0), ("b", 0)], min_part=MIN) == []


def test_the_default_minimum_is_s3s_five_mebibytes() -> None:
    plan = plan_concatenation([("a", 1), ("b", S3_MIN_PART_SIZE)])

    assert sizes(plan) == [S3_MIN_PART_SIZE, 1]


def test_a_plan_of_more_than_ten_thousand_parts_is_refused() -> None:
    with pytest.raises(StorageError) as error:
        plan_concatenation([(f"p{n}", MIN) for n in range(MAX_PARTS + 1)], min_part=MIN)

    assert not error.value.retryable


def unfinished() -> UploadState:
    return UploadState(
        object_key="uploads/abc",
        multipart_upload_id="mpu-1",
        parts=[Part(1, '"e1"', 5), Part(2, '"e2"', 5)],
        staged=[Segment(10, 3, '"s1"'), Segment(13, 2, '"s2"')],
        consumed=[7],
    )


def test_an_unfinished_state_survives_the_round_trip_through_its_dict() -> None:
    state = unfinished()

    assert UploadState.from_dict(state.to_dict(), default_key="other") == state


def test_a_staged_segment_without_an_etag_is_the_old_format_both_ways() -> None:
    old = {
        "object_key": "uploads/abc",
        "multipart_upload_id": "m",
        "staged": [{"offset": 0, "size": 3}],
    }

    state = UploadState.from_dict(old, default_key="x")

    assert state.staged == [Segment(0, 3, None)]
    assert state.to_dict()["staged"] == [{"offset": 0, "size": 3}]
    assert unfinished().to_dict()["staged"][0] == {"offset": 10, "size": 3, "etag": '"s1"'}


def test_the_staging_place_survives_the_round_trip_and_old_states_staged_in_the_bucket() -> None:
    in_database = UploadState("uploads/abc", multipart_upload_id="m", staging="database")

    assert UploadState.from_dict(in_database.to_dict(), default_key="x").staging == "database"
    old = {"object_key": "uploads/abc", "multipart_upload_id": "m", "staged": []}
    assert UploadState.from_dict(old, default_key="x").staging == "bucket"


def test_a_finished_state_keeps_only_its_key_and_size() -> None:
    state = UploadState(object_key="uploads/abc", finished=True, size=42)

    assert state.to_dict() == {"object_key": "uploads/abc", "finished": True, "size": 42}
    assert UploadState.from_dict(state.to_dict(), default_key="x") == state


def test_an_empty_state_is_a_fresh_upload_under_the_default_key() -> None:
    assert UploadState.from_dict({}, default_key="uploads/new") == UploadState("uploads/new")


@pytest.mark.parametrize(
    "state",
    [
        {"parts": [{"number": 1, "etag": "e"}]},
        {"parts": "not a list"},
        {"staged": [{"offset": "ten", "size": 1}]},
        {"staged": ["ten"]},
        {"consumed": [None]},
        {"staging": "attic"},
    ],
)
def test_a_malformed_state_is_a_non_retryable_storage_error(state: dict[str, object]) -> None:
    with pytest.raises(StorageError) as error:
        UploadState.from_dict(state, default_key="k")

    assert not error.value.retryable


def test_sizes_and_the_next_part_number_follow_the_parts_and_segments() -> None:
    state = unfinished()

    assert (state.parts_size, state.staged_size, state.next_part_number) == (10, 5, 3)


def test_the_ten_thousand_and_first_part_is_refused() -> None:
    state = UploadState("k", parts=[Part(n, "e", 1) for n in range(1, MAX_PARTS + 1)])

    with pytest.raises(StorageError):
        _ = state.next_part_number


def test_an_unfinished_state_matches_only_the_offset_its_parts_and_segments_reach() -> None:
    unfinished().check_unfinished(15)
    for offset in (14, 16):
        with pytest.raises(StorageError, match="does not match"):
            unfinished().check_unfinished(offset)


def test_a_finished_or_never_started_state_is_not_an_unfinished_upload() -> None:
    with pytest.raises(StorageError, match="already finished"):
        UploadState("k", finished=True).check_unfinished(0)
    with pytest.raises(StorageError, match="no multipart upload"):
        UploadState("k").check_unfinished(0)


def test_staging_keys_sort_in_offset_order_under_their_uploads_prefix() -> None:
    keys = [staging_key("uploads/abc", offset) for offset in (5_242_880, 0, 1_000, 99)]

    assert all(key.startswith(staging_prefix("uploads/abc")) for key in keys)
    assert sorted(keys) == [staging_key("uploads/abc", n) for n in (0, 99, 1_000, 5_242_880)]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("uploads/abc", "abc"),
        (staging_key("uploads/abc", 10), "abc"),
        ("uploads/abc.sidecar/thumbnail.jpg", "abc"),
        ("uploads/abc/unknown", None),
        ("other/abc", None),
        ("uploads/", None),
    ],
)
def test_every_object_under_the_prefix_is_traced_to_its_upload(name: str, key: str | None) -> None:
    assert key_of("uploads/", name) == key


def test_an_upload_owns_its_object_and_its_staged_segments_but_not_a_longer_namesake() -> None:
    assert belongs_to("uploads/abc", "uploads/abc")
    assert belongs_to("uploads/abc", staging_key("uploads/abc", 0))
    assert not belongs_to("uploads/abc", "uploads/abcd")
    assert not belongs_to("uploads/abc", staging_key("uploads/abcd", 0))
