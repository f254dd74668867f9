"""AppContext: the handles every tool body shares, opened and closed together.

`open_context` is the server's lifespan minus MCP: the upstream client, the storage (the ledger,
the dedupe guards and the task records: SQLite in CUTOUT_STATE_DIR, or PostgreSQL at
CUTOUT_DATABASE_URL), the watcher's poll loops, the pre-flight inspector, the downloader (with its
own HTTP client) and the staging store (the bucket CUTOUT_STAGING_URL names, unless one is handed in),
closed in the reverse order (poll loops end before the storage and the client close). The tool bodies
in `core.jobs.videos` and `core.edits` take this object, so they run and are tested without an MCP client.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cutout_mcp.clock import Clock, SystemClock
from cutout_mcp.config import Settings
from cutout_mcp.config.allowances import load_policy
from cutout_mcp.core.inputs.preflight import ImageInspector, open_inspector
from cutout_mcp.core.inputs.staged import StagedImages
from cutout_mcp.core.jobs.pace import PollPolicy
from cutout_mcp.core.jobs.watch import JobWatcher
from cutout_mcp.core.money.drain import Drain
from cutout_mcp.core.money.paid import PaidCalls, clean_guards
from cutout_mcp.core.outputs.downloads import Downloads
from cutout_mcp.core.results import VideoJob
from cutout_mcp.core.staging import ObjectStore, open_staging
from cutout_mcp.core.storage import Storage, open_storage
from cutout_mcp.telemetry import NO_METRICS, Metrics
from cutout_mcp.upstream.client import CutoutClient, RetryPolicy

if TYPE_CHECKING:
    import httpx

    from cutout_mcp.upstream.models import UpstreamVideoJob

logger = logging.getLogger(__name__)


@dataclass
class AppContext:
    """What every tool call shares, for the lifetime of the server."""

    settings: Settings
    client: CutoutClient
    clock: Clock
    ledger: Storage
    """Jobs, charges and the budget (and the guards and task records), shared by every process."""
    watcher: JobWatcher
    paid: PaidCalls
    downloads: Downloads
    inspector: ImageInspector | None = None
    """Pre-flight image checks; None when CUTOUT_PREFLIGHT=off."""
    staging: ObjectStore | None = None
    """Where local, inline and uploaded images are staged for cutout.pro; None when there is nowhere."""
    staged: StagedImages = field(default=None)  # type: ignore[assignment]
    """Naming, staging and releasing images in `staging` (made from it and the ledger when not given)."""
    drain: Drain = field(default_factory=Drain)
    """The calls in flight and whether the server is stopping (`core.money.drain`)."""
    session: str = field(default_factory=lambda: uuid.uuid4().hex)
    """The key of the one MCP session a stdio server has (its client connection); HTTP sessions have their
    own (`server.principal.current_session`)."""
    metrics: Metrics = NO_METRICS
    """What is counted and timed for the operator (`cutout_mcp.telemetry`); no-ops unless CUTOUT_METRICS_ADDR."""

    def __post_init__(self) -> None:
        if self.staged is None:
            self.staged = StagedImages(self.staging, self.ledger)


@asynccontextmanager
async def open_context(
    settings: Settings,
    *,
    http_transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
    retry: RetryPolicy | None = None,
    poll_policy: PollPolicy | None = None,
    inspector: ImageInspector | None = None,
    staging: ObjectStore | None = None,
    storage: Storage | None = None,
    drain: Drain | None = None,
    metrics: Metrics = NO_METRICS,
) -> AsyncIterator[AppContext]:
    """Everything a tool needs for `settings`; the keyword arguments exist for tests and the sandbox.

    `storage` is a ledger already opened by the caller (the command line opens it before it listens, so
    an unusable one stops the server before any client connects); the caller closes it.
    """
    the_clock = clock or SystemClock()
    client = CutoutClient(settings, transport=http_transport, retry=retry, sleep=the_clock.sleep, metrics=metrics)
    async with (
        open_staging(settings, staging) as staging,  # the given store, or the bucket the settings name
        client,
        open_storage(settings, the_clock) if storage is None else _lent(storage) as ledger,
        _watcher(
            client, ledger, the_clock, poll_policy, staged := StagedImages(staging, ledger, lease=guard_lease(settings))
        ).running() as watcher,
        open_inspector(settings, inspector) as checker,
        Downloads(
            settings.output_dir,
            preview=settings.preview,
            preview_seconds=settings.preview_seconds,
            trusted_origins=settings.trusted_image_origins,
        ) as got,
    ):
        await clean_guards(ledger, the_clock.now())
        if not client.has_key:
            logger.warning("CUTOUT_API_KEY is not set: tools are listed, but every call will fail.")
        await staged.sweep()  # what finished jobs left staged before a restart
        stop_counting = metrics.watch_jobs(watcher.statuses)  # a lifespan per SSE session: each counts its own
        try:
            yield AppContext(
                settings=settings,
                client=client,
                clock=the_clock,
                ledger=ledger,
                watcher=watcher,
                paid=PaidCalls(
                    ledger,
                    settings.credit_budget,
                    the_clock,
                    guard_lease=guard_lease(settings),
                    confirm_above=settings.confirm_spend_above,
                    metrics=metrics,
                    policy=load_policy(settings),
                ),
                downloads=got,
                inspector=checker,
                staging=staging,
                staged=staged,
                drain=drain or Drain(),
                metrics=metrics,
            )
        finally:
            stop_counting()


@asynccontextmanager
async def _lent(storage: Storage) -> AsyncIterator[Storage]:
    yield storage


def _watcher(
    client: CutoutClient, ledger: Storage, clock: Clock, policy: PollPolicy | None, staged: StagedImages
) -> JobWatcher:
    """The poll loops: each read shows a staged image's source, not its presigned URL; each update is
    recorded, and a finished job's staged image released."""

    async def read(job_id: int) -> UpstreamVideoJob:
        return await staged.relabel(await client.get_video(job_id))

    async def update(job: VideoJob) -> None:
        await ledger.update_job(job)
        if job.finished:
            await staged.release_job(job.id)

    return JobWatcher(read, clock, policy or PollPolicy(), on_update=update)


def _staged(staging: ObjectStore | None, ledger: Storage, settings: Settings) -> StagedImages:
    """Staged images, whose submits mark their use for as long as a submit may take."""
    return StagedImages(staging, ledger, lease=guard_lease(settings))


def guard_lease(settings: Settings) -> float:
    """How long a dedupe guard outlives a dead holder: past the longest submit (two answer timeouts,
    covering a retried connect) plus a margin, so a live holder is never taken over."""
    return 2 * settings.http_timeout + 30.0
