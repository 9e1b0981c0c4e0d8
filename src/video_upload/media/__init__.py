"""What a finished upload really is: FFmpeg (PyAV) probing and thumbnails.

`examine` probes a stored upload in a worker thread over ranged reads of the store
(`reader.StoreReader`), bounded in time, bytes, picture size and decoded frames
(`probe.ProbeLimits`). It returns `VideoFacts` (container, real duration, codecs, size, frame
rate, a JPEG thumbnail) or raises `ProbeRejected` with `code` `not_a_video` or `probe_failed`.
What to do with a verdict (reject, free the storage, keep the thumbnail) is the catalog's
business (`uploads.catalog`); this package knows neither HTTP nor the database.
"""

from video_upload.media.examine import examine
from video_upload.media.probe import (
    NOT_A_VIDEO,
    PROBE_FAILED,
    ProbeLimits,
    ProbeRejected,
    VideoFacts,
)
from video_upload.media.thumbnail import THUMBNAIL_NAME

__all__ = [
    "NOT_A_VIDEO",
    "PROBE_FAILED",
    "THUMBNAIL_NAME",
    "ProbeLimits",
    "ProbeRejected",
    "VideoFacts",
    "examine",
]
