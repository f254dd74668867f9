"""The documented cutout.pro limits, written down once.

Tool schemas, argument validation, tool descriptions, the sandbox and the
model table in docs/tools.md all derive from this module, so a price or a limit is
changed here and nowhere else. Figures come from the two upstream documents
(Image-to-Video and Image Edit); where this module adds a rule of its own (the
prompt length cap, the wait bounds) its docstring says so.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- Image-to-Video -------------------------------------------------------

VIDEO_CREDITS = 5
"""Credits one `generate` call costs, whatever the outcome of the job."""
VIDEO_MODEL = "image-to-video"
"""The video API has one model; metrics name it so (edits name theirs)."""

VIDEO_MIN_SIDE_PX = 300
VIDEO_MAX_SIDE_PX = 6000
MAX_IMAGE_BYTES = 10 * 1024 * 1024
"""Both APIs refuse source images over 10 MB."""
MAX_IMAGE_MB = MAX_IMAGE_BYTES // (1024 * 1024)

# --- Image Edit -----------------------------------------------------------

ASPECT_RATIOS: tuple[str, ...] = ("original", "1:1", "4:3", "3:4", "9:16", "16:9")
"""Every model accepts the same ratios; `original` keeps the first image's."""

EDIT_IMAGE_FORMATS: tuple[str, ...] = ("JPEG", "PNG")
"""The edit API takes JPEG or PNG reached over HTTPS."""


@dataclass(frozen=True)
class SizeRules:
    """Per-image limits a model adds beyond the common ones."""

    max_bytes: int
    min_pixels: int
    max_side_px: int
    min_side_px_exclusive: int
    min_ratio: float
    max_ratio: float

    def describe(self) -> str:
        return (
            f"size ≤ {self.max_bytes // (1024 * 1024)} MB; pixels ≥ {self.min_pixels:,}; "
            f"max {self.max_side_px}×{self.max_side_px} px; "
            f"width and height > {self.min_side_px_exclusive} px; "
            f"aspect ratio between {self.ratio_range()}"
        )

    def ratio_range(self, between: str = " and ") -> str:
        return f"1/{round(1 / self.min_ratio)}{between}{self.max_ratio:g}"

    def violations(self, width: int, height: int, size_bytes: int | None = None) -> list[str]:
        """Name every rule an image of this shape breaks (empty when it passes)."""
        found: list[str] = []
        if size_bytes is not None and size_bytes > self.max_bytes:
            found.append(f"size {size_bytes:,} bytes exceeds {self.max_bytes:,}")
        if width * height < self.min_pixels:
            found.append(f"{width}×{height} has {width * height:,} pixels, fewer than {self.min_pixels:,}")
        if max(width, height) > self.max_side_px:
            found.append(f"{width}×{height} has a side over {self.max_side_px} px")
        if min(width, height) <= self.min_side_px_exclusive:
            found.append(f"{width}×{height} has a side of {self.min_side_px_exclusive} px or less")
        if height and not self.min_ratio <= width / height <= self.max_ratio:
            found.append(f"{width}×{height} has an aspect ratio outside {self.ratio_range('..')}")
        return found


@dataclass(frozen=True)
class EditModel:
    """One image-editing model as the Image Edit document lists it."""

    name: str
    credits: int
    max_images: int
    size_rules: SizeRules | None = None

    def constraints(self) -> str:
        return self.size_rules.describe() if self.size_rules else "None"


SEEDREAM_SIZE_RULES = SizeRules(
    max_bytes=MAX_IMAGE_BYTES,
    min_pixels=921_600,
    max_side_px=6000,
    min_side_px_exclusive=14,
    min_ratio=1 / 3,
    max_ratio=3.0,
)

EDIT_MODELS: tuple[EditModel, ...] = (
    EditModel("gpt-image-1", credits=4, max_images=6),
    EditModel("gemini-2.5-flash-image", credits=4, max_images=6),
    EditModel("gemini-3-pro-image-preview", credits=15, max_images=6),
    EditModel("seedream-4.0", credits=4, max_images=6, size_rules=SEEDREAM_SIZE_RULES),
    EditModel("qwen-image-edit-plus", credits=4, max_images=3),
)
EDIT_MODEL_NAMES: tuple[str, ...] = tuple(m.name for m in EDIT_MODELS)
DEFAULT_EDIT_MODEL = "gemini-2.5-flash-image"
MIN_EDIT_IMAGES = 1
MAX_EDIT_IMAGES = max(m.max_images for m in EDIT_MODELS)


def edit_model(name: str) -> EditModel:
    """The catalog entry for `name`; `KeyError` for a model the API does not list."""
    for model in EDIT_MODELS:
        if model.name == name:
            return model
    raise KeyError(name)


# --- Limits this server adds ----------------------------------------------

MAX_PROMPT_CHARS = 2000
"""Neither API documents a prompt limit; 2,000 characters keeps a runaway
prompt from being sent (and paid for) while leaving room for any real one."""

MAX_URL_CHARS = 2048
MAX_WAIT_SECONDS = 600
"""Upper bound for `wait_seconds`; clients time out long before this."""

MAX_JOB_ID = 2**63 - 1
"""Job ids are Java longs upstream."""


def model_table_markdown() -> str:
    """The model table in docs/tools.md, generated so it cannot drift from the catalog."""
    lines = [
        "| model | credits per call | max images | aspect ratios | extra constraints |",
        "| --- | --- | --- | --- | --- |",
    ]
    ratios = ", ".join(ASPECT_RATIOS)
    for m in EDIT_MODELS:
        lines.append(f"| `{m.name}` | {m.credits} | {m.max_images} | {ratios} | {m.constraints()} |")
    return "\n".join(lines)
