"""Contact sheets: the time to make a finished video's sheet, and its size, against decoding every frame.

The sheet (`cutout_mcp.core.outputs.contact_sheet`) seeks to the keyframe before each of its four moments and
decodes forward from there. The floor it is compared with is the naive way: decode every frame, then
pick four. Videos are made here (no network): the sandbox's own 2 s 480×360 MP4 and GIF, and a 10 s
1280×720 H.264 at 24 fps with a keyframe every 2 s (typical of generated video) and with a single
keyframe (the worst case for seeking). Needs PyAV (the `video` extra) for the MP4 rows.

    python bench/contact_sheet.py
"""

from __future__ import annotations

import importlib.util
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Row, median, ms, print_rows
from cutout_mcp.core.outputs import contact_sheet as sheets
from cutout_mcp.sandbox import media

TARGET_SECONDS = 0.5
"""A sheet must not add more than this to a finished video's result (decoding only; the fetch is bounded apart)."""


def _clip(seconds: int, size: tuple[int, int], fps: int, keyframe_every: int) -> bytes:
    import av
    from PIL import Image, ImageDraw

    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.gop_size = keyframe_every
        if "libx264" in av.codecs_available:
            stream.options = {"preset": "ultrafast", "crf": "30"}
        base = Image.linear_gradient("L").resize(size).convert("RGB")
        for index in range(seconds * fps):
            frame = base.copy()
            x = index * (size[0] - 80) // (seconds * fps)
            ImageDraw.Draw(frame).ellipse((x, size[1] // 2 - 40, x + 80, size[1] // 2 + 40), fill=(255, 90, 40))
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def _decode_all(data: bytes) -> int:
    """The floor: every frame decoded to a picture (what picking four frames would take without seeking)."""
    if data.startswith(b"GIF"):
        from PIL import Image, ImageSequence

        with Image.open(io.BytesIO(data)) as image:
            return sum(1 for frame in ImageSequence.Iterator(image) if frame.convert("RGB"))
    import av

    with av.open(io.BytesIO(data), format="mp4") as container:
        return sum(1 for frame in container.decode(video=0) if frame.to_image())


def _timed(work: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return median(times)


def videos() -> dict[str, bytes]:
    from PIL import Image

    photo = Image.open(io.BytesIO(media.sample_photo())).convert("RGB")
    found = {"sandbox GIF, 2 s 480×360": media.render_video(photo, "bench", "gif").video}
    if importlib.util.find_spec("av") is not None:
        found["sandbox MP4, 2 s 480×360"] = media.render_video(photo, "bench", "mp4").video
        found["MP4 10 s 1280×720, keyframe every 2 s"] = _clip(10, (1280, 720), 24, 48)
        found["MP4 10 s 1280×720, one keyframe"] = _clip(10, (1280, 720), 24, 10_000)
    return found


def run(runs: int = 5) -> list[Row]:
    rows = []
    for name, data in videos().items():
        sheet = sheets.contact_sheet(data)
        took = _timed(lambda data=data: sheets.contact_sheet(data), runs)  # type: ignore[misc]
        floor = _timed(lambda data=data: _decode_all(data), max(1, runs // 2))  # type: ignore[misc]
        rows.append(
            Row(
                "contact sheet",
                f"{name} ({len(data) // 1024} KB): time; sheet size",
                f"{ms(took)}; {len(sheet) // 1024} KB",
                f"decode every frame: {ms(floor)}",
                f"< {TARGET_SECONDS * 1000:.0f} ms; ≤ {sheets.SHEET_MAX_BYTES // 1024} KB",
                took < TARGET_SECONDS and len(sheet) <= sheets.SHEET_MAX_BYTES,
            )
        )
    return rows


if __name__ == "__main__":
    print_rows(run())
