"""The image rules cutout.pro enforces, applied to what is known of an image, wherever it came from.

Two readers find the facts: the pre-flight (`core.inputs.preflight`) from the head of a URL's answer, and
the local check (`core.inputs.image_sources`) from the bytes of a file, a `data:` URI or an upload. Both
refuse through the same rules here, so a rule is written once: JPEG/PNG for the edit API (and for
anything this server uploads itself), at most 10 MB, 300-6000 px per side for video, seedream-4.0's
size rules. All limits come from `catalog`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from cutout_mcp import catalog
from cutout_mcp.core.inputs.validation import InvalidArgumentError

MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
)
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png"}


class ImageRefusedError(InvalidArgumentError):
    """An image breaks a rule cutout.pro enforces; nothing was sent or charged."""


@dataclass(frozen=True)
class ImageFacts:
    """What the first bytes and headers say about an image."""

    format: str
    width: int | None
    height: int | None
    size_bytes: int | None


def refused(argument: str, rule: str) -> ImageRefusedError:
    return ImageRefusedError(
        f"{argument} was refused before anything was sent to cutout.pro (no credits spent): {rule}."
    )


def sniff(head: bytes) -> str | None:
    """The format the first bytes announce, or None."""
    return next((name for magic, name in MAGIC if head.startswith(magic)), None)


def check_size(argument: str, size_bytes: int | None) -> None:
    limit = catalog.MAX_IMAGE_BYTES
    if size_bytes is not None and size_bytes > limit:
        raise refused(argument, f"the image is larger than {catalog.MAX_IMAGE_MB} MB ({size_bytes:,} bytes)")


def check_video_facts(argument: str, facts: ImageFacts) -> None:
    """Refuse what the Image-to-Video API would refuse (sides, size)."""
    check_size(argument, facts.size_bytes)
    if facts.width is not None and facts.height is not None:
        low, high = catalog.VIDEO_MIN_SIDE_PX, catalog.VIDEO_MAX_SIDE_PX
        if min(facts.width, facts.height) < low or max(facts.width, facts.height) > high:
            shape = f"{facts.width}×{facts.height} px"
            raise refused(argument, f"the image is {shape}; the video API needs each side between {low} and {high} px")


def check_edit_facts(argument: str, facts: ImageFacts, model: catalog.EditModel) -> None:
    """Refuse what the Image Edit API (and the chosen model) would refuse."""
    check_size(argument, facts.size_bytes)
    if facts.format not in catalog.EDIT_IMAGE_FORMATS:
        raise refused(argument, f"the image is {facts.format}; the Image Edit API takes only JPEG or PNG")
    rules = model.size_rules
    if rules and facts.width is not None and facts.height is not None:
        broken = rules.violations(facts.width, facts.height, facts.size_bytes)
        if broken:
            raise refused(argument, f"{model.name} needs {rules.describe()}; " + "; ".join(broken))


def read_facts(data: bytes, argument: str) -> ImageFacts:
    """Format and dimensions of `data` from its header, without decoding the pixels.

    Only JPEG and PNG pass (what this server uploads on the user's behalf); anything else, including
    a file that merely starts like one, is refused naming the rule, never quoting the bytes. Pillow
    reads the header lazily; callers run this in a worker thread all the same.
    """
    check_size(argument, len(data))
    sniffed = sniff(data[:16])
    if sniffed not in CONTENT_TYPES:
        what = f"a {sniffed} image" if sniffed else "not a JPEG or PNG image"
        raise refused(argument, f"it is {what}; only JPEG or PNG images are accepted from a file, data: URI or upload")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=["JPEG", "PNG"]) as image:
            width, height = image.size
            found = "JPEG" if image.format == "MPO" else image.format
    except Image.DecompressionBombError:
        raise refused(argument, "the image has far more pixels than any limit allows") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise refused(argument, f"it starts like a {sniffed} image but its header cannot be read") from None
    if found != sniffed:
        raise refused(argument, f"it is not a readable {sniffed} image")
    return ImageFacts(sniffed, width, height, len(data))
