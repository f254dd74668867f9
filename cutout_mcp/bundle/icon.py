"""The bundle's icon, drawn from a few shapes so that it can be remade exactly.

The PNG is checked in next to this file (`icon.png`); the build copies it and never draws.
After changing the drawing, run `python -m cutout_mcp.bundle.icon` to rewrite the file; a test
compares the checked-in pixels with `draw_icon()`.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from cutout_mcp.bundle.build import ICON_PATH

SIZE = 512
"""Claude Desktop shows bundle icons best at 512x512 (the mcpb validator's advice)."""

_BACKGROUND = (24, 32, 56)
_FRAME = (255, 255, 255)
_ACCENT = (255, 122, 69)


def draw_icon() -> Image.Image:
    """A film frame with a play triangle and a dashed cut line: video from a still, cut out."""
    image = Image.new("RGB", (SIZE, SIZE), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((96, 128, 416, 384), radius=28, outline=_FRAME, width=20)
    draw.polygon([(216, 188), (216, 324), (328, 256)], fill=_ACCENT)
    for x in range(74, 438, 48):  # the dashed cut line, centred: 8 dashes of 28 px, 20 px apart
        draw.rectangle((x, 430, x + 28, 444), fill=_ACCENT)
    return image.quantize(colors=4, dither=Image.Dither.NONE)


def write_icon(path: Path = ICON_PATH) -> Path:
    """Write the icon as a small palette PNG; Pillow's encoder, not the clock, decides its bytes."""
    draw_icon().save(path, format="PNG", optimize=True)
    return path


if __name__ == "__main__":
    print(write_icon())
