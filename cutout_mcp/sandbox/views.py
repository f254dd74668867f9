"""JSON shapes: upstream's camelCase `data` objects and the control surface's stats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cutout_mcp import catalog
from cutout_mcp.clock import ManualClock
from cutout_mcp.sandbox.envelope import EDIT_FAILED, EDIT_FAILED_MSG, EDIT_SUCCEEDED, now_ms

if TYPE_CHECKING:
    from cutout_mcp.sandbox.records import EditRecord, Progress, VideoJob
    from cutout_mcp.sandbox.state import SandboxState


@dataclass(frozen=True)
class VideoResult:
    """Links and size of a finished video; absent (all null) while the job runs or after it failed."""

    result_url: str
    cover_url: str
    width: int
    height: int


def video_job(job: VideoJob, progress: Progress, user_id: int, result: VideoResult | None) -> dict[str, Any]:
    return {
        "id": job.id,
        "userId": user_id,
        "imageUrl": job.image_url,
        "originalPrompt": job.prompt,
        "resultUrl": result.result_url if result else None,
        "cover": result.cover_url if result else None,
        "width": result.width if result else None,
        "height": result.height if result else None,
        "status": progress.status,
        "percentage": progress.percentage,
        "waitNumber": progress.wait_number,
        "createdAt": int(job.created_at * 1000),
    }


def edit(record: EditRecord, user_id: int, image_url: str | None) -> dict[str, Any]:
    return {
        "id": record.id,
        "userId": user_id,
        "imageUrl": image_url,
        "prompt": record.prompt,
        "model": record.model,
        "aspectRatios": record.aspect_ratio,
        "referenceImageUrl": list(record.image_urls),
        "status": EDIT_FAILED if record.failed else EDIT_SUCCEEDED,
        "failReason": EDIT_FAILED_MSG if record.failed else None,
        "deleted": 0,
        "duration": record.duration,
        "createdAt": int(record.created_at * 1000),
    }


def stats(state: SandboxState) -> dict[str, Any]:
    """What `GET /__sandbox__/stats` answers (snake_case: this is the sandbox's own API)."""
    jobs = []
    for job in state.jobs.values():
        progress = state.progress(job)
        jobs.append(
            {
                "id": job.id,
                "status": progress.status,
                "percentage": progress.percentage,
                "wait_number": progress.wait_number,
                "image_url": job.image_url,
                "prompt": job.prompt,
                "created_at": job.created_at,
                "ends_at": job.end,
            }
        )
    edits = [
        {
            "id": r.id,
            "model": r.model,
            "aspect_ratio": r.aspect_ratio,
            "status": EDIT_FAILED if r.failed else EDIT_SUCCEEDED,
            "prompt": r.prompt,
            "credits": catalog.edit_model(r.model).credits,
            "created_at": r.created_at,
        }
        for r in state.edits.values()
    ]
    return {
        "charges": state.charges,
        "credits_spent": state.credits_spent,
        "balance": state.balance,
        "requests": dict(state.requests),
        "jobs": jobs,
        "edits": edits,
        "pending_faults": [f.to_json() for f in state.faults.pending],
        "faults_fired": state.faults.fired,
        "fault_log": list(state.fault_log),
        "clock": "manual" if isinstance(state.clock, ManualClock) else "system",
        "now": now_ms(state.clock),
        "video_format": state.video_ext,
        "staged_objects": sorted(state.staged),
    }
