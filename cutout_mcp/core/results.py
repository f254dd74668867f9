"""What the tools return: strict, snake_case, each carrying what the call cost.

Upstream payloads (`upstream.models`) are mapped onto these here, so a raw
upstream status or camelCase field never reaches a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from cutout_mcp import catalog
from cutout_mcp.errors import CutoutMcpError

if TYPE_CHECKING:
    from cutout_mcp.upstream.models import UpstreamVideoJob

JobStatus = Literal["queued", "processing", "succeeded", "failed"]
ACTIVE_STATUSES: tuple[JobStatus, ...] = ("queued", "processing")


def job_status(upstream_status: int | None, wait_number: int | None) -> JobStatus:
    """Map cutout.pro's numeric status onto the four states a client sees.

    0 means "generating": queued while others are ahead of it, processing
    once none are. 1 is success and 2 failure. Any other value (sibling
    cutout.pro APIs use 3 for "waiting") is treated as still queued, so the
    job keeps being polled rather than reported as finished.
    """
    if upstream_status == 1:
        return "succeeded"
    if upstream_status == 2:
        return "failed"
    if upstream_status == 0:
        return "queued" if (wait_number or 0) > 0 else "processing"
    return "queued"


def iso_from_millis(millis: int | None) -> str | None:
    if millis is None:
        return None
    try:
        return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def _nullable_as_type_list(schema: dict[str, Any]) -> None:
    """Write an optional field as `"type": ["string", "null"]` rather than pydantic's two-branch `anyOf`.

    The same rule, but a client's validator checks it in one step instead of trying one branch and
    building an error for it, on every optional field of every result (the official client's jsonschema
    spends about a fifth less on an edit result)."""
    for field in schema.get("properties", {}).values():
        branches = field.get("anyOf")
        if (
            isinstance(branches, list)
            and len(branches) == 2
            and branches[1] == {"type": "null"}
            and set(branches[0]) == {"type"}
            and isinstance(branches[0]["type"], str)
        ):
            del field["anyOf"]
            field["type"] = [branches[0]["type"], "null"]


class _Result(BaseModel):
    """A tool result: its published output schema writes optional fields in the cheapest form to validate."""

    model_config = ConfigDict(json_schema_extra=_nullable_as_type_list)


class VideoJob(_Result):
    """A video job as the tools report it."""

    id: int = Field(description="The job id; pass it to get_video_result to check on the job.")
    status: JobStatus
    percentage: float = Field(description="Upstream progress, 0 to 100.")
    wait_number: int = Field(description="How many jobs are ahead of this one in cutout.pro's queue.")
    result_url: str | None = Field(default=None, description="The video, once succeeded. The link expires.")
    cover_url: str | None = Field(default=None, description="A still cover image of the video.")
    width: int | None = None
    height: int | None = None
    image_url: str | None = Field(default=None, description="The source image.")
    prompt: str | None = None
    created_at: str | None = Field(default=None, description="When the job was submitted (ISO 8601, UTC).")
    credits_charged: int = Field(
        description=f"Credits this tool call cost ({catalog.VIDEO_CREDITS} for a submit, 0 for a read or a reused job)."
    )
    message: str = Field(description="What happened, in a sentence.")
    next_step: str | None = Field(default=None, description="What to do next, when the job is not finished.")
    local_path: str | None = Field(
        default=None, description="The video saved in the server's output folder (CUTOUT_OUTPUT_DIR), when set."
    )
    cover_local_path: str | None = Field(default=None, description="The cover saved beside the video.")

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed")

    @classmethod
    def from_upstream(cls, job: UpstreamVideoJob, *, credits_charged: int = 0) -> VideoJob:
        status = job_status(job.status, job.wait_number)
        percentage = 100.0 if status == "succeeded" else max(0.0, min(100.0, job.percentage or 0.0))
        return cls(
            id=job.id,
            status=status,
            percentage=percentage,
            wait_number=max(0, job.wait_number or 0),
            result_url=job.result_url,
            cover_url=job.cover,
            width=job.width,
            height=job.height,
            image_url=job.image_url,
            prompt=job.original_prompt,
            created_at=iso_from_millis(job.created_at),
            credits_charged=credits_charged,
            message=describe_job(job.id, status, percentage, max(0, job.wait_number or 0)),
        )


def describe_job(
    job_id: int,
    status: JobStatus,
    percentage: float,
    wait_number: int,
    *,
    seconds_left: float | None = None,
    waited: float | None = None,
) -> str:
    """One sentence about a job, used both as progress message and result message.

    Progress messages add how long this call has waited and, once the pace is known, an estimate of
    the time left (until rendering starts, for a queued job; until done, for a rendering one).
    """
    notes = []
    if status == "queued":
        notes.append(f"{wait_number} job{'s' if wait_number != 1 else ''} ahead" if wait_number else "waiting")
        if seconds_left is not None:
            notes.append(f"about {duration(seconds_left)} until it starts rendering")
        sentence = f"Video job {job_id} is queued at cutout.pro ({{}})"
    elif status == "processing":
        notes.append(f"{percentage:.0f}%")
        if seconds_left is not None:
            notes.append(f"about {duration(seconds_left)} left")
        sentence = f"Video job {job_id} is rendering ({{}})"
    elif status == "succeeded":
        sentence = f"Video job {job_id} is done{{}}"
    else:
        sentence = f"Video job {job_id} failed at cutout.pro{{}}"
    detail = ", ".join(notes)
    if waited is not None:
        detail += ("; " if detail else "") + f"waited {duration(waited)}"
    if status in ("succeeded", "failed"):
        return sentence.format(f" ({detail})." if detail else ".")
    return sentence.format(detail) + "."


def duration(seconds: float) -> str:
    """`45 s` below a minute and a half, `3 min` above: estimates are rough, so is their wording."""
    seconds = max(0.0, seconds)
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class EditResult(_Result):
    """A finished image edit."""

    id: int = Field(description="cutout.pro's id for this edit.")
    status: Literal["succeeded"]
    image_url: str = Field(description="The edited image. The link expires.")
    model: str
    aspect_ratio: str
    prompt: str
    reference_image_urls: list[str]
    duration_seconds: float | None = Field(default=None, description="Time cutout.pro spent on the edit.")
    created_at: str | None = Field(default=None, description="When the edit was made (ISO 8601, UTC).")
    credits_charged: int = Field(description="Credits this call cost.")
    local_path: str | None = Field(
        default=None, description="The image saved in the server's output folder (CUTOUT_OUTPUT_DIR), when set."
    )
    message: str


class LedgerJob(_Result):
    """A video job as the ledger remembers it (as of its last poll)."""

    id: int = Field(description="The job id; pass it to get_video_result.")
    status: JobStatus
    percentage: float
    wait_number: int
    image_url: str
    prompt: str | None = None
    result_url: str | None = Field(default=None, description="The video, once succeeded. The link expires.")
    cover_url: str | None = None
    credits: int = Field(description="Credits the submit cost.")
    created_at: str = Field(description="When it was submitted (ISO 8601, UTC).")
    updated_at: str = Field(description="When its state was last read (ISO 8601, UTC).")


class AllowanceShare(_Result):
    """The caller's own limits and what is left of them (never another caller's)."""

    name: str = Field(description="Who this share belongs to: you, as the server knows you.")
    credits: int | None = Field(description="Your allowance per period, if one is set.")
    period: str | None = Field(description='The period it renews every: "day", "week", "month" or a duration.')
    used: int | None = Field(description="Credits you used this period (calls whose outcome is unknown count).")
    left: int | None = Field(description="Credits left of your allowance this period.")
    renews_at: str | None = Field(description="When the allowance renews (ISO 8601, UTC).")
    session_credits: int | None = Field(description="The cap on one MCP session (one client connection), if set.")
    session_used: int | None = Field(description="Credits used in this session.")
    session_left: int | None = Field(description="Credits left in this session.")
    paid_calls_per_minute: int | None = Field(description="Paid calls you may start in any 60 s, if limited.")


class CreditSummary(_Result):
    """Credits recorded as spent, and what the optional budget and the caller's allowance leave."""

    spent: int = Field(description="Credits spent by you (this caller), as recorded in the ledger.")
    spent_total: int = Field(description="Credits spent by every caller of this server's ledger.")
    budget: int | None = Field(default=None, description="CUTOUT_CREDIT_BUDGET, if set.")
    remaining: int | None = Field(default=None, description="Credits left in the budget, if one is set.")
    allowance: AllowanceShare | None = Field(
        default=None, description="Your allowance, session cap and rate, when any is set (docs/allowances.md)."
    )


class JobList(_Result):
    """The caller's video jobs from the ledger, and the credits spent."""

    jobs: list[LedgerJob] = Field(description="Newest first. Status is as of the last check of each job.")
    credits: CreditSummary
    credits_charged: int = Field(default=0, description="Credits this call cost (listing is free).")
    message: str


class JobError(CutoutMcpError):
    """A video job or an edit failed at cutout.pro, could not be read, or is not the caller's."""


@dataclass(frozen=True)
class FileLink:
    """A file the caller can open: a local copy (a file:// URI) or cutout.pro's expiring URL."""

    uri: str
    name: str
    description: str
    mime_type: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Picture:
    """A small JPEG the assistant can look at."""

    jpeg: bytes


Attachment = FileLink | Picture
ResultT = TypeVar("ResultT", bound=BaseModel)


@dataclass(frozen=True)
class Delivered(Generic[ResultT]):
    """A tool's result and what comes with it (links to copies, a preview)."""

    result: ResultT
    attachments: tuple[Attachment, ...] = ()
