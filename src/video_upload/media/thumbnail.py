"""Turning one decoded frame into a small, upright JPEG, with FFmpeg alone (no image library).

Phones store portrait videos as landscape frames plus a display matrix saying how to turn
them; `upright` applies it (FFmpeg's transpose/flip filters), as players do.
"""

from __future__ import annotations

from fractions import Fraction

import av
from av.video.frame import VideoFrame

THUMBNAIL_NAME = "thumbnail.jpg"
JPEG_QUALITY = 4  # FFmpeg's qscale for mjpeg: 2 (best) to 31 (worst)
_LAMBDA_PER_QP = 118  # FFmpeg's FF_QP2LAMBDA


def scaled_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """The frame's size scaled down to at most `max_width` wide, aspect kept, even sides."""
    if width > max_width:
        height = round(height * max_width / width)
        width = max_width
    return max(2, width - width % 2), max(2, height - height % 2)


# Counter-clockwise display rotation (PyAV's `VideoFrame.rotation`) -> the filters that apply it.
_TURNS = {
    90: [("transpose", "cclock")],
    180: [("hflip", ""), ("vflip", "")],
    270: [("transpose", "clock")],
}


def display_rotation(frame: VideoFrame) -> int:
    """How a player turns the frame, counter-clockwise: 0, 90, 180 or 270 degrees."""
    return (round(frame.rotation / 90) * 90) % 360


def upright(frame: VideoFrame) -> VideoFrame:
    """The frame as it is displayed (its display matrix applied)."""
    turns = _TURNS.get(display_rotation(frame))
    if not turns:
        return frame
    graph = av.filter.Graph()
    source = graph.add_buffer(
        width=frame.width, height=frame.height, format=frame.format, time_base=Fraction(1, 25)
    )
    node = source
    for name, argument in turns:
        step = graph.add(name, argument or None)
        node.link_to(step)
        node = step
    sink = graph.add("buffersink")
    node.link_to(sink)
    graph.configure()
    graph.push(frame)
    turned = graph.vpull()
    return turned


def encode_jpeg(frame: VideoFrame, max_width: int) -> bytes:
    """The frame, upright, as a baseline JPEG at most `max_width` pixels wide."""
    frame = upright(frame)
    width, height = scaled_size(frame.width, frame.height, max_width)
    picture = frame.reformat(width=width, height=height, format="yuvj420p")
    encoder = av.CodecContext.create("mjpeg", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.qmin = encoder.qmax = JPEG_QUALITY
    encoder.global_quality = JPEG_QUALITY * _LAMBDA_PER_QP
    picture.pts = 0
    packets = encoder.encode(picture) + encoder.encode(None)
    return b"".join(bytes(packet) for packet in packets)
