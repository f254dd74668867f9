"""Small JPEG previews of images, so the assistant can see a result.

A preview is at most `PREVIEW_SIDE_PX` per side and `PREVIEW_MAX_BYTES`. JPEGs are decoded straight
at 1/2, 1/4 or 1/8 scale (`Image.draft`), which is most of the speed; an image that already fits is
its own preview.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from cutout_mcp.core.outputs.jpeg import fit_jpeg

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

PREVIEW_SIDE_PX = 512
PREVIEW_MAX_BYTES = 200 * 1024
PREVIEW_MAX_SOURCE_PIXELS = 80_000_000
"""Larger images are not decoded for a preview (a decompression bomb guard)."""


def preview_file(path: Path) -> bytes:
    """`make_preview` of a file (one worker-thread hop for reading and shrinking)."""
    return make_preview(path.read_bytes())


def make_preview(data: bytes) -> bytes:
    """A JPEG thumbnail of `data` within `PREVIEW_SIDE_PX` and `PREVIEW_MAX_BYTES` (raises if unreadable)."""
    from PIL import Image  # here, not at module level: Pillow costs ~25 ms of start-up

    side = PREVIEW_SIDE_PX
    try:
        with Image.open(io.BytesIO(data)) as source:
            if source.width * source.height > PREVIEW_MAX_SOURCE_PIXELS:
                raise ValueError(f"{source.width}×{source.height} is too large to preview")
            if _fits_as_is(source, len(data), side):
                return data
            # JPEG: decode at the smallest of 1/2, 1/4, 1/8 scale still covering the thumbnail (a no-op
            # for other formats); then shrink by whole factors before the one resampling pass.
            source.draft("RGB", _fit(source.size, side))
            source.thumbnail((side, side), reducing_gap=2.0)
            image = _on_white(source)
    except Image.DecompressionBombError as exc:
        raise ValueError(str(exc)) from None
    return fit_jpeg(image, side, PREVIEW_MAX_BYTES)


def _fits_as_is(source: PILImage, size_bytes: int, side: int) -> bool:
    """Is `source` already a preview: a plain RGB or grey JPEG within the bounds, with no EXIF to pass on?

    Then re-encoding would only cost time and quality. (A re-encoded preview carries no metadata, so one
    with EXIF, which may hold where and when a photo was taken or a rotation, is still re-encoded.)
    """
    return (
        source.format == "JPEG"
        and source.mode in ("RGB", "L")
        and max(source.size) <= side
        and size_bytes <= PREVIEW_MAX_BYTES
        and "exif" not in source.info
    )


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    """`size` scaled to fit within `side` x `side`, keeping its aspect ratio."""
    width, height = size
    scale = min(1.0, side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _on_white(image: PILImage) -> PILImage:
    """RGB, with any transparency flattened onto white (as the image would show on a page)."""
    from PIL import Image

    if image.mode not in ("RGBA", "LA", "PA", "RGBa", "La") and "transparency" not in image.info:
        if image.mode == "RGB":  # already what is wanted: `convert` would decode into a second copy
            image.load()
            return image
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, "white")
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat
