"""What the uploader learns from the local file before sending it: content type and duration.

The server asks for both at `upload/init`. The content type comes from the file name; the
duration is read from the file's container with PyAV (FFmpeg), the way the server probes a
finished upload, so the declared duration matches what the server finds. A file whose duration
cannot be read is refused here, before a byte is sent, with `DurationUnknown`: the server would
refuse it as not a video after the whole upload, unless its probing is off (then the caller can
still declare a duration).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

# Video types that `mimetypes` does not know on every platform (it reads the system's tables).
VIDEO_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/x-m4v",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".3gp": "video/3gpp",
}
# Formats FFmpeg opens that are not videos: pictures, and the text "tty" demuxer that opens
# any text file as a short animation.
NOT_VIDEO_FORMATS = frozenset({"image2", "gif", "apng", "webp", "ico", "tty", "lavfi"})


class DurationUnknown(Exception):
    """The file's duration cannot be read: it is not a video, or its container says no end."""


def guess_type(filename: str) -> str | None:
    """The content type the file name suggests: `take.mov` → `video/quicktime`."""
    suffix = Path(filename.lower()).suffix
    if suffix in VIDEO_TYPES:
        return VIDEO_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(filename.lower())
    return guessed


def read_duration(path: Path) -> float:
    """The video's duration in seconds, from its container (or its video stream)."""
    import av
    from av.stream import Disposition

    try:
        with av.open(str(path), mode="r") as container:
            name = container.format.name
            if name in NOT_VIDEO_FORMATS or name.endswith("_pipe"):
                raise DurationUnknown(f"FFmpeg reads it as {name}, not as a video")
            streams = [
                stream
                for stream in container.streams.video
                if not stream.disposition & Disposition.attached_pic  # cover art
            ]
            if not streams:
                raise DurationUnknown("it has no video stream")
            if container.duration is not None and container.duration > 0:
                return float(container.duration) / av.time_base
            stream = streams[0]
            if stream.duration and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            raise DurationUnknown("its container does not say how long it is")
    except av.error.FFmpegError as error:
        reason = error.strerror or type(error).__name__
        raise DurationUnknown(f"FFmpeg cannot read it: {reason[:1].lower()}{reason[1:]}") from None
