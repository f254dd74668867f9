"""One picture as a JPEG within a side and byte budget: what every inline image in a result is.

Used by the edit preview and the video contact sheet (`core.outputs.downloads`, `core.outputs.contact_sheet`), so both
keep to the same bounds. Pillow is imported by the callers' functions, never at start-up.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

QUALITIES = (80, 65, 50)


def fit_jpeg(image: Image, side_px: int, max_bytes: int) -> bytes:
    """`image` (RGB) scaled to at most `side_px` per side, at the best quality that fits `max_bytes`;
    the side is halved until it fits."""
    side = side_px
    while True:
        thumb = image
        if max(image.size) > side:  # a copy only when it must shrink
            thumb = image.copy()
            thumb.thumbnail((side, side))
        for quality in QUALITIES:
            out = io.BytesIO()
            thumb.save(out, "JPEG", quality=quality)  # no optimize pass: it doubles the encode time
            if out.tell() <= max_bytes:
                return out.getvalue()
        if side <= 1:
            raise ValueError(f"cannot fit a JPEG in {max_bytes} bytes")
        side //= 2
