"""Real, tiny test videos made with PyAV (the FFmpeg in its wheel), and files that only pretend.

Frames are synthetic (a moving gradient, without numpy: plane bytes are built directly), a few
seconds long, so a whole video is tens of kilobytes and is made in a fraction of a second.
"""

from __future__ import annotations

import io
import tempfile
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

H264 = "libx264" if "libx264" in av.codecs_available else "mpeg4"
SAMPLE_RATE = 44100


def _frame(index: int, width: int, height: int) -> VideoFrame:
    """A yuv420p frame: a horizontal gradient moving with `index`, colours shifting."""
    frame = VideoFrame(width, height, "yuv420p")
    luma, blue, red = frame.planes
    row = bytes((x * 2 + index * 8) % 256 for x in range(luma.line_size))
    luma.update(row * height)
    blue.update(bytes([(index * 7) % 256]) * blue.buffer_size)
    red.update(bytes([(255 - index * 5) % 256]) * red.buffer_size)
    frame.pts = index
    return frame


def _mux(
    out: av.container.OutputContainer,
    codec: str,
    seconds: float,
    fps: int,
    size: tuple[int, int],
    audio: bool,
    rotation: int,
) -> None:
    video = out.add_stream(codec, rate=fps)
    assert isinstance(video, VideoStream)
    video.width, video.height = size
    video.pix_fmt = "yuv420p"
    if rotation:
        video.set_display_rotation(rotation)  # as phones mark portrait recordings
    video.codec_context.gop_size = fps  # a keyframe every second, as phones do
    sound = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono") if audio else None
    for index in range(round(seconds * fps)):
        for packet in video.encode(_frame(index, *size)):
            out.mux(packet)
    for packet in video.encode():
        out.mux(packet)
    if sound is None:
        return
    samples = 1024
    for block in range(int(seconds * SAMPLE_RATE / samples)):
        chunk = av.AudioFrame(format="fltp", layout="mono", samples=samples)
        chunk.sample_rate = SAMPLE_RATE
        chunk.pts = block * samples
        chunk.time_base = Fraction(1, SAMPLE_RATE)
        chunk.planes[0].update(bytes(chunk.planes[0].buffer_size))  # silence
        for packet in sound.encode(chunk):
            out.mux(packet)
    for packet in sound.encode():
        out.mux(packet)


def synthetic_video(
    container: str = "mp4",
    *,
    codec: str = H264,
    seconds: float = 2.0,
    fps: int = 25,
    size: tuple[int, int] = (320, 240),
    audio: bool = True,
    faststart: bool = False,
    rotation: int = 0,
) -> bytes:
    """The bytes of a real video file. `faststart` puts the index (moov) before the frames;
    `rotation` (counter-clockwise degrees) is the display matrix players apply."""
    if not faststart:
        buffer = io.BytesIO()
        with av.open(buffer, mode="w", format=container) as out:
            _mux(out, codec, seconds, fps, size, audio, rotation)
        return buffer.getvalue()
    with tempfile.TemporaryDirectory() as folder:  # faststart rewrites the file it made
        path = Path(folder) / f"video.{container}"
        with av.open(str(path), mode="w", options={"movflags": "faststart"}) as out:
            _mux(out, codec, seconds, fps, size, audio, rotation)
        return path.read_bytes()


def raw_h264_stream(seconds: float = 1.0, fps: int = 25) -> bytes:
    """An H.264 elementary stream: frames without a container, so without a known duration."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="h264") as out:
        _mux(out, H264, seconds, fps, (320, 240), audio=False, rotation=0)
    return buffer.getvalue()


def huge_y4m_header(width: int = 12000, height: int = 9000) -> bytes:
    """A raw YUV4MPEG2 file declaring an absurd picture size, with a token frame after it."""
    header = f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\n".encode()
    return header + b"FRAME\n" + bytes(4096)


def text_pretending_to_be_mp4() -> bytes:
    return b"These are my practice notes, not a video. Scales in C, then arpeggios.\n" * 40


def decode_jpeg(data: bytes) -> tuple[int, int]:
    """The size of the picture in a JPEG, decoded by FFmpeg (raises if it does not decode)."""
    with av.open(io.BytesIO(data), mode="r") as image:
        frame = next(image.decode(video=0))
        return frame.width, frame.height
