"""Everything the sandbox remembers: jobs, edits, balance, charges, request counts.

Video job progress is derived from the clock on every read instead of being
advanced by a background task, so a `ManualClock` drives it exactly.
"""

from __future__ import annotations

import math
import secrets
from collections import Counter

from cutout_mcp import catalog
from cutout_mcp.sandbox.assets import MediaLibrary
from cutout_mcp.sandbox.config import SandboxConfig
from cutout_mcp.sandbox.envelope import (
    ABNORMAL,
    ABNORMAL_MSG,
    INAPPROPRIATE,
    INAPPROPRIATE_MSG,
    INSUFFICIENT_BALANCE,
    INSUFFICIENT_BALANCE_MSG,
    NOT_FOUND,
    NOT_FOUND_MSG,
    VIDEO_FAILED,
    VIDEO_RUNNING,
    VIDEO_SUCCEEDED,
    ApiError,
)
from cutout_mcp.sandbox.faults import Fault, Faults
from cutout_mcp.sandbox.media import VideoExt, av_available
from cutout_mcp.sandbox.paths import counter_key
from cutout_mcp.sandbox.records import FAIL_AT_FRACTION, EditRecord, Progress, VideoJob
from cutout_mcp.sandbox.triggers import Trigger, find_triggers, first_rejecting
from cutout_mcp.sandbox.validation import EditRequest, VideoRequest

_REJECTIONS: dict[Trigger, ApiError] = {
    Trigger.INAPPROPRIATE: ApiError(INAPPROPRIATE, INAPPROPRIATE_MSG),
    Trigger.ABNORMAL: ApiError(ABNORMAL, ABNORMAL_MSG),
    Trigger.NO_BALANCE: ApiError(INSUFFICIENT_BALANCE, INSUFFICIENT_BALANCE_MSG),
}


class SandboxState:
    """One sandbox's world; `reset()` returns it to a fresh start."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config if config is not None else SandboxConfig()
        self.clock = self.config.clock
        if self.config.video_format == "mp4" and not av_available():
            raise ValueError("video_format='mp4' needs PyAV (pip install av)")
        use_mp4 = self.config.video_format == "mp4" or (self.config.video_format == "auto" and av_available())
        self.video_ext: VideoExt = "mp4" if use_mp4 else "gif"
        self.faults = Faults()
        self.media = MediaLibrary(self)
        self.jobs: dict[int, VideoJob] = {}
        self.edits: dict[int, EditRecord] = {}
        self.requests: Counter[str] = Counter()
        self.balance = self.config.balance
        self.staged: dict[str, tuple[bytes, str]] = {}
        """The object store on the sandbox's origin (`sandbox.staged`): key -> (bytes, content type)."""
        self.charges = 0
        """Number of calls that were charged."""
        self.credits_spent = 0
        self.fault_log: list[dict[str, object]] = []
        """Every fault applied: when, to which request, and the job or edit it charged (when it fired after)."""

    def log_fault(self, fault: Fault, path: str, method: str, *, after: bool, charged_id: int | None) -> None:
        """Remember one applied fault, so a test (or a soak) can tell the charges whose answer was lost."""
        self.fault_log.append(
            {
                "at": self.clock.now(),
                "path": path,
                "method": method.upper(),
                "kind": fault.kind,
                "after": after,
                "charged_id": charged_id,
            }
        )

    def reset(self, balance: int | None = None) -> None:
        """Forget jobs, edits, counters, faults and cached media; refill the balance."""
        self.jobs.clear()
        self.edits.clear()
        self.requests.clear()
        self.faults.clear()
        self.faults.fired = 0
        self.media.clear()
        self.staged.clear()
        self.balance = self.config.balance if balance is None else balance
        self.charges = 0
        self.credits_spent = 0
        self.fault_log.clear()

    def count_request(self, path: str) -> None:
        self.requests[counter_key(path)] += 1

    def _new_id(self) -> int:
        """A fresh 15-digit id like upstream's; shared by jobs and edits."""
        while True:
            candidate = 10**14 + secrets.randbelow(9 * 10**14)
            if candidate not in self.jobs and candidate not in self.edits:
                return candidate

    def _admit(self, texts: list[str], cost: int) -> set[Trigger]:
        """Refuse per trigger token or balance, else charge `cost`; returns the tokens found."""
        found = find_triggers(texts)
        rejecting = first_rejecting(found)
        if rejecting is not None:
            raise _REJECTIONS[rejecting]
        if cost > self.balance:
            raise _REJECTIONS[Trigger.NO_BALANCE]
        self.balance -= cost
        self.charges += 1
        self.credits_spent += cost
        return found

    def submit_video(self, request: VideoRequest) -> VideoJob:
        found = self._admit([request.prompt, request.image_url], catalog.VIDEO_CREDITS)
        job = VideoJob(
            id=self._new_id(),
            seq=len(self.jobs),
            image_url=request.image_url,
            prompt=request.prompt,
            created_at=self.clock.now(),
            queue_seconds=self.config.queue_seconds,
            job_seconds=self.config.job_seconds,
            fails=Trigger.JOB_FAILS in found,
        )
        self.jobs[job.id] = job
        return job

    def submit_edit(self, request: EditRequest) -> EditRecord:
        found = self._admit([request.prompt, *request.image_urls], request.model.credits)
        record = EditRecord(
            id=self._new_id(),
            prompt=request.prompt,
            model=request.model.name,
            aspect_ratio=request.aspect_ratio,
            image_urls=request.image_urls,
            created_at=self.clock.now(),
            failed=Trigger.JOB_FAILS in found,
        )
        self.edits[record.id] = record
        return record

    def job(self, job_id: int) -> VideoJob:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise ApiError(NOT_FOUND, NOT_FOUND_MSG) from None

    def progress(self, job: VideoJob) -> Progress:
        """Where `job` stands now: queued, processing, finished or failed."""
        now = self.clock.now()
        if now < job.queue_end:
            remaining = (job.queue_end - now) / job.queue_seconds
            backlog = math.ceil(self.config.queue_depth * remaining)
            ahead = sum(1 for other in self.jobs.values() if other.seq < job.seq and other.queue_end > now)
            return Progress(VIDEO_RUNNING, 0, backlog + ahead)
        if now >= job.end:
            if job.fails:
                return Progress(VIDEO_FAILED, int(100 * FAIL_AT_FRACTION), 0)
            return Progress(VIDEO_SUCCEEDED, 100, 0)
        elapsed = now - job.queue_end
        return Progress(VIDEO_RUNNING, min(99, int(100 * elapsed / job.job_seconds)), 0)
