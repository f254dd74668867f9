"""Pictures and videos the sandbox serves, drawn with Pillow (and PyAV for MP4).

Pillow and PyAV are imported inside the functions so that importing the
sandbox package stays cheap. All functions here are synchronous and CPU-bound;
callers run them in a worker thread.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import math
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage
    from PIL.ImageFont import FreeTypeFont, ImageFont

VideoExt = Literal["mp4", "gif"]

VIDEO_FPS = 12
VIDEO_SECONDS = 2
VIDEO_MAX_SIDE = 480
EDIT_MAX_SIDE = 1024
SAMPLE_SIZE = (1280, 960)
"""4:3 and 1,228,800 pixels: within every edit model's rules (seedream-4.0 wants at least 921,600)."""
PLACEHOLDER_SIZE = (960, 720)
DECODE_MAX_SIDE = 1280
TINT = (255, 96, 48)


def av_available() -> bool:
    """Whether PyAV can be imported, checked without importing it."""
    return importlib.util.find_spec("av") is not None


@dataclass(frozen=True)
class RenderedVideo:
    video: bytes
    cover: bytes
    width: int
    height: int


def _font(size: int) -> FreeTypeFont | ImageFont:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType, or before 10.1
        return ImageFont.load_default()  # type: ignore[return-value,unused-ignore]


def _jpeg(image: PILImage, quality: int = 88) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def sample_photo() -> bytes:
    """A 1280×960 landscape JPEG so a demo has an input without any network.

    Drawn for 1024×768 and scaled, so the picture is the same at any size.
    """
    from PIL import Image, ImageDraw

    w, h = 1024, 768
    image = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(image)
    horizon = int(h * 0.62)
    for y in range(horizon):
        t = y / horizon
        draw.line([(0, y), (w, y)], fill=(int(40 + 150 * t), int(110 + 110 * t), int(200 + 40 * t)))
    draw.ellipse((700, 120, 840, 260), fill=(255, 226, 120))
    draw.polygon([(0, horizon), (260, 300), (520, horizon)], fill=(88, 104, 130))
    draw.polygon([(300, horizon), (640, 250), (1024, horizon)], fill=(70, 86, 112))
    draw.polygon([(560, 330), (640, 250), (700, 312)], fill=(240, 244, 250))
    for y in range(horizon, h):
        t = (y - horizon) / (h - horizon)
        draw.line([(0, y), (w, y)], fill=(int(60 - 30 * t), int(140 - 60 * t), int(70 - 30 * t)))
    for i in range(9):
        x = 60 + i * 115
        draw.rectangle((x + 14, 640, x + 22, 700), fill=(90, 60, 30))
        draw.ellipse((x - 8, 580, x + 44, 650), fill=(30, 100 + 8 * i, 50))
    draw.text((24, h - 40), "cutout.pro sandbox sample", fill=(255, 255, 255), font=_font(22))
    return _jpeg(image.resize(SAMPLE_SIZE, Image.Resampling.LANCZOS), quality=90)


def decode_image(data: bytes) -> PILImage | None:
    """An RGB image from bytes, shrunk to a workable size; None when it is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.draft("RGB", (DECODE_MAX_SIDE, DECODE_MAX_SIDE))
        rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    rgb.thumbnail((DECODE_MAX_SIDE, DECODE_MAX_SIDE))
    return rgb


def placeholder(prompt: str, size: tuple[int, int] = PLACEHOLDER_SIZE) -> PILImage:
    """Stand-in for a source image that could not be fetched: a gradient with the prompt on it."""
    from PIL import Image, ImageDraw

    w, h = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(h):
        t = y / max(h - 1, 1)
        draw.line([(0, y), (w, y)], fill=(int(70 + 90 * t), int(40 + 40 * t), int(120 - 40 * t)))
    font = _font(max(16, w // 24))
    text = "\n".join(textwrap.wrap(prompt.strip() or "(no prompt)", width=28)[:6])
    draw.multiline_text((w // 2, h // 2), text, fill=(255, 255, 255), font=font, anchor="mm", align="center")
    draw.text((12, 10), "sandbox placeholder", fill=(230, 230, 230), font=_font(max(12, w // 48)))
    return image


def _even(value: float) -> int:
    return max(16, round(value / 2) * 2)


def video_size(source_width: int, source_height: int) -> tuple[int, int]:
    """Video dimensions: the source's aspect ratio, long side 480 px, even numbers for H.264."""
    scale = VIDEO_MAX_SIDE / max(source_width, source_height)
    return _even(source_width * scale), _even(source_height * scale)


def _cover_fit(image: PILImage, size: tuple[int, int]) -> PILImage:
    """Scale and centre-crop `image` to fill `size` exactly."""
    from PIL import ImageOps

    return ImageOps.fit(image, size)


def _caption(size: tuple[int, int], text: str) -> PILImage:
    from PIL import Image, ImageDraw

    w, h = size
    overlay = Image.new("RGBA", size, (0, 0, 0, 0))
    band = max(18, min(w, h) // 10)
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, h - band, w, h), fill=(0, 0, 0, 140))
    font = _font(band // 2)
    short = text
    while len(short) > 4 and draw.textlength(short, font=font) > w - 16:
        short = short[: len(short) - 4] + "..."
    draw.text((8, h - band // 2), short, fill=(255, 255, 255, 255), font=font, anchor="lm")
    return overlay


def _frames(source: PILImage, prompt: str, size: tuple[int, int]) -> list[PILImage]:
    """A slow zoom-in with a slight pan, the same motion whatever the source."""
    from PIL import Image

    w, h = size
    base = _cover_fit(source, (int(w * 1.25), int(h * 1.25)))
    bw, bh = base.size
    overlay = _caption(size, prompt) if prompt.strip() else None
    count = VIDEO_FPS * VIDEO_SECONDS
    frames: list[PILImage] = []
    for i in range(count):
        t = i / (count - 1)
        eased = 0.5 - 0.5 * math.cos(math.pi * t)
        zoom = 1.0 + 0.18 * eased
        cw, ch = bw / zoom, bh / zoom
        cx = bw * (0.46 + 0.08 * eased)
        cy = bh * 0.5
        left = min(max(cx - cw / 2, 0.0), bw - cw)
        top = min(max(cy - ch / 2, 0.0), bh - ch)
        frame = base.resize(size, Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch))
        if overlay is not None:
            frame = Image.alpha_composite(frame.convert("RGBA"), overlay).convert("RGB")
        frames.append(frame)
    return frames


def _encode_mp4(frames: list[PILImage]) -> bytes:
    av: Any = importlib.import_module("av")
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=VIDEO_FPS)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "28"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def _encode_gif(frames: list[PILImage]) -> bytes:
    from PIL import Image

    first = frames[0].quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    rest = [f.quantize(palette=first) for f in frames[1:]]
    out = io.BytesIO()
    first.save(out, format="GIF", save_all=True, append_images=rest, duration=round(1000 / VIDEO_FPS), loop=0)
    return out.getvalue()


def render_video(source: PILImage | None, prompt: str, ext: VideoExt) -> RenderedVideo:
    """The finished job's video and cover: the source (or a placeholder) slowly zoomed."""
    image = source if source is not None else placeholder(prompt)
    size = video_size(*image.size)
    frames = _frames(image, prompt, size)
    video = _encode_mp4(frames) if ext == "mp4" else _encode_gif(frames)
    return RenderedVideo(video=video, cover=_jpeg(frames[0], quality=85), width=size[0], height=size[1])


def edit_size(ratio: str, first: tuple[int, int]) -> tuple[int, int]:
    """Output size: the requested `w:h` with a 1024 px long side; `original` keeps the first image's."""
    if ratio == "original":
        w, h = first
    else:
        a, b = ratio.split(":")
        w, h = int(a), int(b)
    scale = EDIT_MAX_SIDE / max(w, h)
    if ratio == "original" and scale > 1:
        return w, h
    return max(1, round(w * scale)), max(1, round(h * scale))


def render_edit(sources: list[PILImage | None], prompt: str, ratio: str) -> bytes:
    """A visibly edited JPEG: first source cropped to the ratio, tinted, prompt written on it."""
    from PIL import Image, ImageDraw

    images = [s if s is not None else placeholder(prompt) for s in sources] or [placeholder(prompt)]
    size = edit_size(ratio, images[0].size)
    w, h = size
    result = Image.blend(_cover_fit(images[0], size), Image.new("RGB", size, TINT), 0.3)
    thumb_side = max(32, min(w, h) // 5)
    for i, extra in enumerate(images[1:]):
        thumb = _cover_fit(extra, (thumb_side, thumb_side))
        x = w - (i + 1) * (thumb_side + 8)
        if x < 0:
            break
        result.paste((255, 255, 255), (x - 3, 5, x + thumb_side + 3, thumb_side + 11))
        result.paste(thumb, (x, 8))
    result = Image.alpha_composite(result.convert("RGBA"), _caption(size, f"edited: {prompt}"))
    ImageDraw.Draw(result).rectangle((0, 0, w - 1, h - 1), outline=(*TINT, 255), width=max(2, w // 200))
    return _jpeg(result)
