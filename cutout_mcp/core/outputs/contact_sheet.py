"""A finished video as one small picture the assistant can look at: a contact sheet.

`FRAMES` frames evenly spaced from the first to the last, in a grid of `COLUMNS` columns, each frame
labelled with its time, as one JPEG of at most `SHEET_SIDE_PX` per side and `SHEET_MAX_BYTES`.

Decisions:
- GIF is read with Pillow (always installed); MP4/MOV and WebM/Matroska with PyAV, which is the
  optional `video` extra. Anything else, or a video without PyAV, raises `NoContactSheet`, and the
  caller shows the cover image instead (`core.outputs.downloads`).
- The container is recognised from its first bytes and handed to exactly that demuxer, so a file
  that claims to be a video cannot make FFmpeg open a playlist or another file.
- Only what is needed is decoded: for each time point, seek to the keyframe at or before it and
  decode forward to it (a GIF has no keyframes: it is read once, keeping the frames it needs), with
  a cap on the pixels decoded in all (`MAX_DECODED_PIXELS`) and on a frame's size
  (`MAX_FRAME_PIXELS`).
- Everything here is synchronous and CPU-bound: callers run it in a worker thread.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cutout_mcp.core.outputs.jpeg import fit_jpeg

if TYPE_CHECKING:
    from PIL.Image import Image

FRAMES = 4
COLUMNS = 2
SHEET_SIDE_PX = 512
SHEET_MAX_BYTES = 200 * 1024
GAP_PX = 2
MAX_DECODED_PIXELS = 500_000_000
"""Pixels decoded for one sheet at most, about a second of work: 250 frames of 1080p, 2,900 of 480×360.
A long video with few keyframes is not decoded whole; the sheet then shows the frames reached."""
MAX_FRAME_PIXELS = 40_000_000
"""Larger frames are not decoded (8K is 33 million)."""

Container = Literal["gif", "mp4", "matroska"]
Source = bytes | Path
Frame = tuple[float, "Image"]
"""A frame's time in seconds, and the frame."""


class NoContactSheet(ValueError):
    """This video cannot be made into a contact sheet here (the message says why); show the cover instead."""


def av_available() -> bool:
    """Whether PyAV (the `video` extra) can be imported, checked without importing it."""
    return importlib.util.find_spec("av") is not None


def contact_sheet(source: Source) -> bytes:
    """The contact sheet JPEG of the video in `source` (its bytes, or a local file)."""
    container = sniff(_head(source))
    if container is None:
        raise NoContactSheet("not a GIF, MP4 or WebM video")
    frames = gif_frames(source) if container == "gif" else av_frames(source, container)
    if not frames:
        raise NoContactSheet("the video has no frames")
    return compose(frames)


def sniff(head: bytes) -> Container | None:
    """The container a file's first bytes announce, or None."""
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    return None


def spaced(duration: float, count: int = FRAMES) -> list[float]:
    """`count` time points from the start to the end of `duration` seconds, evenly spaced."""
    if count == 1:
        return [0.0]
    return [duration * i / (count - 1) for i in range(count)]


def gif_frames(source: Source, count: int = FRAMES) -> list[Frame]:
    """Frames of an animated GIF, evenly spaced, with Pillow."""
    from PIL import Image

    try:
        return _gif_frames(Image.open(io.BytesIO(source) if isinstance(source, bytes) else source), count)
    except (OSError, EOFError, Image.DecompressionBombError) as exc:
        raise NoContactSheet(f"the GIF cannot be read ({type(exc).__name__})") from None


def _gif_frames(opened: Image, count: int) -> list[Frame]:
    """One pass through the frames (each GIF frame is drawn over the last, so none can be skipped),
    keeping the evenly spaced ones; their times add up the frames' durations."""
    with opened as image:
        total = min(getattr(image, "n_frames", 1), _frame_budget(image.width, image.height))
        picks = {round(i * (total - 1) / max(1, count - 1)) for i in range(min(count, total))}
        frames: list[Frame] = []
        elapsed = 0.0
        for index in range(max(picks) + 1):
            image.seek(index)
            if index in picks:
                frames.append((elapsed, _cell(image.convert("RGB"))))
            elapsed += max(0, int(image.info.get("duration", 100))) / 1000
    return frames


def av_frames(source: Source, container: Container, count: int = FRAMES) -> list[Frame]:
    """Frames of an MP4 or WebM at evenly spaced times, decoded with PyAV from the keyframe before each."""
    if not av_available():
        raise NoContactSheet("PyAV is not installed (the 'video' extra)")
    av: Any = importlib.import_module("av")
    target = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        with av.open(target, format=container) as opened:
            if not opened.streams.video:
                raise NoContactSheet("the file has no video stream")
            stream = opened.streams.video[0]
            duration = _duration(opened, stream, av.time_base)
            budget = [_frame_budget(stream.codec_context.width, stream.codec_context.height)]
            frames: list[Frame] = []
            for moment in spaced(duration, count):
                if stream.time_base is not None:
                    opened.seek(int(moment / stream.time_base), stream=stream, backward=True, any_frame=False)
                found = _decode_to(opened.decode(stream), moment, budget)
                if found is not None:
                    frames.append(found)
            return frames
    except av.FFmpegError as exc:
        raise NoContactSheet(f"the video cannot be decoded ({type(exc).__name__})") from None


def compose(frames: list[Frame]) -> bytes:
    """The frames in a grid, each labelled with its time, as one JPEG within the sheet's bounds."""
    from PIL import Image, ImageDraw

    cell_w = max(image.width for _, image in frames)
    cell_h = max(image.height for _, image in frames)
    rows = -(-len(frames) // COLUMNS)
    columns = min(COLUMNS, len(frames))
    sheet = Image.new("RGB", (columns * cell_w + (columns - 1) * GAP_PX, rows * cell_h + (rows - 1) * GAP_PX))
    draw = ImageDraw.Draw(sheet)
    for index, (seconds, image) in enumerate(frames):
        x = (index % COLUMNS) * (cell_w + GAP_PX) + (cell_w - image.width) // 2
        y = (index // COLUMNS) * (cell_h + GAP_PX) + (cell_h - image.height) // 2
        sheet.paste(image, (x, y))
        label = f"{seconds:.1f} s"
        box = draw.textbbox((x + 4, y + 4), label)
        draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
        draw.text((x + 4, y + 4), label, fill=(255, 255, 255))
    return fit_jpeg(sheet, SHEET_SIDE_PX, SHEET_MAX_BYTES)


def _cell(image: Image) -> Image:
    """A frame shrunk at once to its place in the grid, so a sheet never holds full-size frames."""
    side = (SHEET_SIDE_PX - (COLUMNS - 1) * GAP_PX) // COLUMNS
    small = image.copy()
    small.thumbnail((side, side))
    return small


def _decode_to(decoded: Iterator[Any], moment: float, budget: list[int]) -> Frame | None:
    """The first frame at or after `moment` (the last one, at the end of the video)."""
    last: Any = None
    for frame in decoded:
        budget[0] -= 1
        last = frame
        if frame.time is None or frame.time >= moment - 1e-6 or budget[0] <= 0:
            break
    if last is None:
        return None
    return (float(last.time or 0.0), _cell(last.to_image()))


def _duration(opened: Any, stream: Any, time_base: int) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if opened.duration is not None:
        return float(opened.duration / time_base)
    raise NoContactSheet("the video does not say how long it is")


def _frame_budget(width: int, height: int) -> int:
    """How many frames of this size one sheet may decode; refuses frames too large to decode at all."""
    if width * height > MAX_FRAME_PIXELS:
        raise NoContactSheet(f"{width}×{height} frames are too large to decode for a preview")
    return max(2 * FRAMES, MAX_DECODED_PIXELS // max(1, width * height))


def _head(source: Source) -> bytes:
    if isinstance(source, bytes):
        return source[:16]
    with source.open("rb") as handle:
        return handle.read(16)
