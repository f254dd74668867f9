"""What the sandbox remembers about each video job and edit (plain records, no behaviour)."""

from __future__ import annotations

from dataclasses import dataclass

FAIL_AT_FRACTION = 0.5
"""A failing job stops halfway through processing, percentage frozen there."""


@dataclass
class VideoJob:
    id: int
    seq: int
    """Submission order, for counting the jobs queued ahead."""
    image_url: str
    prompt: str
    created_at: float
    queue_seconds: float
    job_seconds: float
    fails: bool

    @property
    def queue_end(self) -> float:
        return self.created_at + self.queue_seconds

    @property
    def end(self) -> float:
        fraction = FAIL_AT_FRACTION if self.fails else 1.0
        return self.queue_end + self.job_seconds * fraction


@dataclass(frozen=True)
class Progress:
    status: int
    percentage: int
    wait_number: int


@dataclass
class EditRecord:
    id: int
    prompt: str
    model: str
    aspect_ratio: str
    image_urls: tuple[str, ...]
    created_at: float
    failed: bool
    duration: str = "0.00"
