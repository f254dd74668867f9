"""Finishing a `generate_video` task that another server process started and could not finish.

The process that died had already paid for the job and written its id into the task's row, so the
adopting process only waits for that job again (a free read, through the shared poll loop), within
what is left of the task's wait bound, and turns it into the same tool result the task would have
had: the job, what its submit cost, or a tool error naming the job when it failed.
"""

from __future__ import annotations

from typing import Any

from mcp.types import CallToolResult, TextContent

from cutout_mcp.core.context import AppContext
from cutout_mcp.core.jobs import videos
from cutout_mcp.core.results import Delivered, VideoJob
from cutout_mcp.core.storage import TaskRow
from cutout_mcp.errors import CutoutMcpError
from cutout_mcp.server.calls import call_result
from cutout_mcp.server.tasks import TASK_MAX_WAIT_SECONDS, TaskRecord, set_status

ADOPTED = "This task's server process stopped; another one finished watching the job."


async def resume_generate_video(app: AppContext, row: TaskRow, record: TaskRecord) -> dict[str, Any]:
    assert row.job_id is not None
    remaining = max(0.0, row.created_at + TASK_MAX_WAIT_SECONDS - app.clock.now())

    async def show(progress: float, total: float, message: str) -> None:
        set_status(message)

    try:
        delivered = await videos.get_video_result(
            app, row.owner, row.job_id, wait_seconds=remaining, on_progress=show, owned=True
        )
        job = delivered.result.model_copy(
            update={"credits_charged": row.credits, "message": f"{delivered.result.message} {ADOPTED}"}
        )
        result = call_result(Delivered[VideoJob](job, delivered.attachments))
    except CutoutMcpError as exc:  # what the error boundary makes of it in an ordinary call
        result = CallToolResult(content=[TextContent(type="text", text=str(exc))], is_error=True)
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)
