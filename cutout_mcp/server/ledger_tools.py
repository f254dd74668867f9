"""list_video_jobs and the cutout:// resources: the ledger, scoped to the caller; the work is in
`core.jobs.videos`.

No `from __future__ import annotations`: the SDK reads the annotations at registration.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.types import ToolAnnotations
from pydantic import Field

from cutout_mcp.core.context import AppContext
from cutout_mcp.core.jobs import videos
from cutout_mcp.core.results import JobList, JobStatus
from cutout_mcp.server import texts, views
from cutout_mcp.server.principal import current_session


@dataclass
class Running:
    """The running AppContext, for static resources, which the SDK gives no Context."""

    app: AppContext | None = None

    def get(self) -> AppContext:
        if self.app is None:
            raise RuntimeError("the server is not running")
        return self.app


def register(server: MCPServer[AppContext], running: Running, principal: Callable[[], str]) -> None:
    @server.tool(
        title="List my video jobs",
        description=texts.LIST_VIDEO_JOBS,
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
        meta=views.tool_meta("list_video_jobs"),
    )
    async def list_video_jobs(
        status: Annotated[
            JobStatus | None, Field(description="Only jobs in this state (as last seen); all when omitted.")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="At most this many jobs (1-100).")] = 20,
        ctx: Context[AppContext, Any] = None,  # type: ignore[assignment]
    ) -> JobList:
        session = current_session(ctx) if ctx is not None else None
        return await videos.list_video_jobs(running.get(), principal(), status, limit, session=session)

    @server.resource(
        "cutout://jobs",
        name="video_jobs",
        title="My video jobs",
        description="Your 100 newest video jobs from the job ledger, newest first, with credits spent (JSON).",
        mime_type="application/json",
    )
    async def jobs_resource() -> str:
        return (await videos.list_video_jobs(running.get(), principal(), None, 100)).model_dump_json(indent=2)

    @server.resource(
        "cutout://jobs/{id}",
        name="video_job",
        title="A video job",
        description="One of your video jobs as the ledger last saw it (JSON); get_video_result gives the live state.",
        mime_type="application/json",
    )
    async def job_resource(id: str) -> str:
        ledger = running.get().ledger
        job = await ledger.get_job(principal(), int(id)) if id.isdigit() and len(id) < 20 else None
        if job is None:
            raise ResourceNotFoundError(f"No video job {id} in the ledger for you.")
        return job.model_dump_json(indent=2)

    @server.resource(
        "cutout://credits",
        name="credits",
        title="Credits spent",
        description="Credits recorded as spent (yours and in total), what CUTOUT_CREDIT_BUDGET leaves, and your "
        "own allowance, session cap and rate when any is set (JSON).",
        mime_type="application/json",
    )
    async def credits_resource() -> str:
        app = running.get()
        # a static resource gets no request context: the session is known only on stdio, where there is one
        session = app.session if app.settings.transport == "stdio" else None
        limits = app.paid.limits(principal(), session)
        return (await app.ledger.credits(principal(), app.settings.credit_budget, limits)).model_dump_json(indent=2)
