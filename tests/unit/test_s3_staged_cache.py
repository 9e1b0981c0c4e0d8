"""The S3 store's copy of the staged pieces it put (`video_upload.storage.s3_staged_cache`)."""

from __future__ import annotations

from video_upload.storage.s3_parts import Segment
from video_upload.storage.s3_staged_cache import StagedCache

KEY = "uploads/abc"


def test_a_piece_is_served_only_for_a_segment_naming_its_etag_and_size() -> None:
    cache = StagedCache(capacity=100)
    cache.put(KEY, 0, '"a"', b"abc")

    assert cache.get(KEY, Segment(0, 3, '"a"')) == b"abc"
    assert cache.get(KEY, Segment(0, 3, '"b"')) is None  # another PUT of that key
    assert cache.get(KEY, Segment(0, 4, '"a"')) is None
    assert cache.get(KEY, Segment(0, 3, None)) is None  # a state from before ETags
    assert cache.get("uploads/other", Segment(0, 3, '"a"')) is None
    assert (cache.hits, cache.misses) == (1, 4)


def test_a_put_without_an_etag_or_larger_than_the_capacity_is_not_kept() -> None:
    cache = StagedCache(capacity=4)
    cache.put(KEY, 0, '"a"', b"abc")
    cache.put(KEY, 0, None, b"xyz")  # replaces the key's earlier piece, so that one goes
    cache.put(KEY, 3, '"b"', b"toolong")

    assert cache.size == 0
    assert cache.get(KEY, Segment(0, 3, '"a"')) is None


def test_retain_keeps_only_the_pieces_the_committed_segments_name() -> None:
    cache = StagedCache(capacity=100)
    cache.put(KEY, 0, '"a"', b"aa")
    cache.put(KEY, 2, '"b"', b"bb")
    cache.put(KEY, 4, '"c"', b"cc")

    cache.retain(KEY, [Segment(0, 2, '"a"'), Segment(2, 2, '"other"')])

    assert cache.size == 2
    assert cache.get(KEY, Segment(0, 2, '"a"')) == b"aa"


def test_drop_and_drop_upload_release_their_bytes() -> None:
    cache = StagedCache(capacity=100)
    cache.put(KEY, 0, '"a"', b"aa")
    cache.put(KEY, 2, '"b"', b"bb")
    cache.put("uploads/other", 0, '"c"', b"ccc")

    cache.drop(KEY, [0, 99])
    assert cache.size == 5
    cache.drop_upload("uploads/other")
    assert cache.size == 2
    cache.drop_upload(KEY)
    assert cache.size == 0


def test_the_capacity_evicts_the_oldest_pieces_of_the_least_recently_used_upload() -> None:
    cache = StagedCache(capacity=6)
    cache.put("uploads/old", 0, '"o1"', b"oo")
    cache.put("uploads/old", 2, '"o2"', b"oo")
    cache.put(KEY, 0, '"a"', b"aa")
    assert cache.get("uploads/old", Segment(0, 2, '"o1"')) == b"oo"  # now the most recent

    cache.put(KEY, 2, '"b"', b"bb")  # 8 bytes: KEY is the most recent, "uploads/old" gives
    assert cache.size == 6
    assert cache.get("uploads/old", Segment(0, 2, '"o1"')) is None
    assert cache.get("uploads/old", Segment(2, 2, '"o2"')) == b"oo"
    assert cache.get(KEY, Segment(0, 2, '"a"')) == b"aa"
    assert cache.get(KEY, Segment(2, 2, '"b"')) == b"bb"
