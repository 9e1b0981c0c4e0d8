"""Examining a stored file with FFmpeg (PyAV): is it a video, what is in it, and a thumbnail.

`probe` runs in a worker thread over a `StoreReader` and is bounded against hostile files:

- time and bytes: the reader's `ReadBudget` (20 s of the examination's own time, 64 MiB by
  default) makes every read past it fail, which makes FFmpeg abort; the decoding loops check the
  clock too. Time spent waiting for the store is not counted: a slow store is no verdict on the
  file (a store that stalls is a `StorageError`, see `media.reader`);
- FFmpeg's own probing reads at most `probe_bytes` and analyses at most `analyze_seconds`;
- pictures: a stream declaring more than `max_dimension` pixels per side is refused before any
  frame is decoded, and the decoders are opened with `max_pixels` so that a stream lying in its
  headers cannot make them allocate more;
- frames: at most `max_thumbnail_frames` are decoded, after one seek to about 10% in;
- endless streams: a stream whose duration is not known is refused, and a file whose last
  second cannot be read (truncated) is not a video.

Verdicts are `ProbeRejected` with a code: `not_a_video` (FFmpeg cannot read it as a video) or
`probe_failed` (the probe gave up: budget, absurd dimensions, unknown duration). A failure of the
store itself (`StorageError`) is not a verdict on the file and propagates as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

import av
from av.container import InputContainer
from av.stream import Disposition
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from video_upload.media.reader import ProbeAborted, StoreReader
from video_upload.media.thumbnail import display_rotation, encode_jpeg
from video_upload.storage.base import StorageError

log = logging.getLogger(__name__)

MIB = 1024 * 1024
NOT_A_VIDEO = "not_a_video"
PROBE_FAILED = "probe_failed"
# FFmpeg demuxers of still (or animated) images: they open, but what they hold is not a video.
IMAGE_FORMATS = frozenset({"image2", "gif", "apng", "webp", "ico", "tty", "lavfi"})
# QuickTime-family major brands, to tell a .mov from an .mp4 (FFmpeg's demuxer is the same).
_BRANDS = {"qt": "mov", "M4V": "m4v", "M4A": "m4a"}


@dataclass(frozen=True)
class ProbeLimits:
    seconds: float = 20.0
    max_read_bytes: int = 64 * MIB
    store_wait_seconds: float = 60.0  # for one block; longer is a store failure, not a verdict
    max_dimension: int = 8192
    max_thumbnail_frames: int = 30
    max_tail_packets: int = 600
    thumbnail_width: int = 480
    thumbnail_position: float = 0.10
    probe_bytes: int = 5_000_000
    analyze_seconds: float = 5.0


@dataclass(frozen=True)
class VideoFacts:
    """What the probe found in a file that is a video (`width` x `height` as displayed)."""

    container: str
    duration_seconds: float
    video_codec: str
    audio_codec: str | None
    width: int
    height: int
    frame_rate: float | None
    thumbnail: bytes | None


class ProbeRejected(Exception):
    """The file is not an acceptable video; `code` says which way, `reason` says why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def probe(reader: StoreReader, limits: ProbeLimits) -> VideoFacts:
    """Examine the file behind `reader` (blocking: call it from a worker thread)."""
    reader.budget.start()
    try:
        with _open(reader, limits) as container:
            _raise_read_failure(reader)
            return _examine(container, reader, limits)
    except (ProbeRejected, StorageError):
        raise
    except ProbeAborted as error:
        raise ProbeRejected(PROBE_FAILED, str(error)) from None
    except av.error.FFmpegError as error:
        _raise_read_failure(reader)
        raise ProbeRejected(NOT_A_VIDEO, _ffmpeg_reason(error)) from None
    except Exception as error:  # never a 500 for a file, whatever FFmpeg or PyAV raise
        _raise_read_failure(reader)
        log.exception("unexpected failure while probing a video")
        raise ProbeRejected(PROBE_FAILED, f"the video could not be examined ({error})") from None
    finally:
        reader.close()


def _open(reader: StoreReader, limits: ProbeLimits) -> InputContainer:
    options = {
        "probesize": str(limits.probe_bytes),
        "analyzeduration": str(int(limits.analyze_seconds * 1_000_000)),
        # Given to the decoders that FFmpeg's stream analysis opens, too.
        "max_pixels": str(limits.max_dimension * limits.max_dimension),
    }
    return av.open(reader, mode="r", options=options)


def _examine(container: InputContainer, reader: StoreReader, limits: ProbeLimits) -> VideoFacts:
    format_name = container.format.name
    if format_name in IMAGE_FORMATS or format_name.endswith("_pipe"):
        raise ProbeRejected(NOT_A_VIDEO, f"the file is an image ({format_name}), not a video")
    stream = _video_stream(container)
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        raise ProbeRejected(NOT_A_VIDEO, "the video stream has no picture size")
    if max(width, height) > limits.max_dimension:
        raise ProbeRejected(
            PROBE_FAILED,
            f"the video declares {width}x{height} pixels; "
            f"at most {limits.max_dimension} pixels per side are supported",
        )
    duration = _duration(container, stream)
    if duration is None:
        raise ProbeRejected(
            PROBE_FAILED, "the video's duration cannot be determined (a stream without an end?)"
        )
    stream.codec_context.options = {"max_pixels": str(limits.max_dimension**2)}
    _check_tail(container, stream, duration, reader, limits)
    frame = _thumbnail_frame(container, stream, duration, reader, limits)
    audio = [s for s in container.streams.audio if s.codec_context is not None]
    rate = stream.average_rate or stream.guessed_rate
    if display_rotation(frame) in {90, 270}:  # a portrait phone video: as players show it
        width, height = height, width
    return VideoFacts(
        container=_container_name(container),
        duration_seconds=duration,
        video_codec=stream.codec_context.name,
        audio_codec=audio[0].codec_context.name if audio else None,
        width=width,
        height=height,
        frame_rate=round(float(rate), 3) if rate else None,
        thumbnail=_jpeg(frame, limits),
    )


def _video_stream(container: InputContainer) -> VideoStream:
    for stream in container.streams.video:
        if not stream.disposition & Disposition.attached_pic:  # cover art is not a video
            return stream
    raise ProbeRejected(NOT_A_VIDEO, "the file has no video stream")


def _duration(container: InputContainer, stream: VideoStream) -> float | None:
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / av.time_base
    if stream.duration is not None and stream.duration > 0 and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


def _container_name(container: InputContainer) -> str:
    """FFmpeg's format name; for the QuickTime family, which member it is by its brand."""
    name = container.format.name
    if not name.startswith("mov,mp4"):
        return name
    brand = str(container.metadata.get("major_brand", "")).strip()
    if brand.startswith("3g"):
        return "3gp"
    return _BRANDS.get(brand, "mp4")


def _seconds_to_pts(stream: VideoStream, seconds: float) -> int:
    time_base = stream.time_base or Fraction(1, av.time_base)
    return int(seconds / time_base)


def _check_tail(
    container: InputContainer,
    stream: VideoStream,
    duration: float,
    reader: StoreReader,
    limits: ProbeLimits,
) -> None:
    """Refuse a file that ends (truncated) before the last second its headers promise."""
    margin = min(1.0, duration / 4)
    target = duration - margin
    try:
        container.seek(_seconds_to_pts(stream, target), stream=stream, any_frame=True)
    except av.error.FFmpegError:
        _raise_read_failure(reader)
        return  # cannot seek in this format: nothing to conclude
    time_base = stream.time_base or Fraction(1, av.time_base)
    try:
        for count, packet in enumerate(container.demux(stream)):
            reader.budget.check_time()
            if packet.size > 0 and (
                packet.pts is None or packet.pts * time_base >= target - margin
            ):
                return
            if count >= limits.max_tail_packets:
                return  # far from the end still; the byte budget decides how far we look
    except av.error.FFmpegError:
        _raise_read_failure(reader)
    _raise_read_failure(reader)
    raise ProbeRejected(
        NOT_A_VIDEO, f"the file is truncated: it ends before the {duration:.1f} s it declares"
    )


def _thumbnail_frame(
    container: InputContainer,
    stream: VideoStream,
    duration: float,
    reader: StoreReader,
    limits: ProbeLimits,
) -> VideoFrame:
    """A frame about `thumbnail_position` in, decoding at most `max_thumbnail_frames`."""
    target = duration * limits.thumbnail_position
    try:
        container.seek(_seconds_to_pts(stream, target), stream=stream)
    except av.error.FFmpegError:
        _raise_read_failure(reader)
        container.seek(0)  # formats that cannot seek by time start from the beginning
    chosen: VideoFrame | None = None
    try:
        for decoded, frame in enumerate(container.decode(stream), start=1):
            reader.budget.check_time()
            chosen = frame
            if frame.time is None or frame.time >= target or decoded >= limits.max_thumbnail_frames:
                break
    except av.error.FFmpegError as error:
        _raise_read_failure(reader)
        if chosen is None:
            raise ProbeRejected(NOT_A_VIDEO, _ffmpeg_reason(error)) from None
    _raise_read_failure(reader)
    if chosen is None:
        raise ProbeRejected(NOT_A_VIDEO, "no picture could be decoded from the video stream")
    return chosen


def _jpeg(frame: VideoFrame, limits: ProbeLimits) -> bytes | None:
    try:
        return encode_jpeg(frame, limits.thumbnail_width)
    except (av.error.FFmpegError, ValueError):
        log.warning("could not encode a thumbnail", exc_info=True)
        return None


def _raise_read_failure(reader: StoreReader) -> None:
    """If FFmpeg failed because a read failed, that read's failure is the real reason."""
    failure = reader.failure
    if isinstance(failure, ProbeAborted):
        raise ProbeRejected(PROBE_FAILED, str(failure)) from None
    reader.raise_failure()


def _ffmpeg_reason(error: av.error.FFmpegError) -> str:
    detail = error.strerror or type(error).__name__
    return f"the file is not a video FFmpeg can read ({detail})"
