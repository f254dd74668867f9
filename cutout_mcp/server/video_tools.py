"""generate_video and get_video_result: schemas, annotations and the task hand-off; the work is in
`core.jobs.videos`, the spend confirmation in `server.spend`.

This module has no `from __future__ import annotations`: the SDK reads the tools' annotations at
registration, and some are built from settings when a tool is registered.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context, Elicit, ElicitationResult, MCPServer, Resolve
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from cutout_mcp import catalog
from cutout_mcp.config import Settings
from cutout_mcp.core.context import AppContext
from cutout_mcp.core.inputs.image_sources import MAX_IMAGE_ARGUMENT_CHARS
from cutout_mcp.core.inputs.validation import image_pattern
from cutout_mcp.core.jobs import videos
from cutout_mcp.core.results import VideoJob
from cutout_mcp.server import spend, texts, views
from cutout_mcp.server.calls import PAID_TOOL, app_of, call_result, progress_sender
from cutout_mcp.server.principal import current_session
from cutout_mcp.server.spend import SpendConfirmation
from cutout_mcp.server.tasks import TASK_MAX_WAIT_SECONDS, begin_task, set_status

JobId = Annotated[
    Annotated[int, Field(ge=1, le=catalog.MAX_JOB_ID)] | Annotated[str, Field(pattern=r"^\s*[0-9]{1,19}\s*$")],
    Field(description="The job id generate_video returned (an integer; a digit string is accepted too)."),
]
WaitSeconds = Annotated[float, Field(ge=0, le=catalog.MAX_WAIT_SECONDS, description=texts.WAIT_SECONDS)]
ResultWaitSeconds = Annotated[
    float, Field(ge=0, le=catalog.MAX_WAIT_SECONDS, description="How long to wait for the job to finish.")
]
Prompt = Annotated[
    str | None,
    Field(
        description="Optional keywords that steer the motion and look of the video.",
        max_length=catalog.MAX_PROMPT_CHARS,
    ),
]
ForceNew = Annotated[
    bool,
    Field(
        description=(
            "Pay for a new job even while an identical one (same image and prompt: the same image content, "
            "whatever path or URL it came by) is still queued or processing. Without it, that unfinished job is "
            "returned instead, free."
        )
    ),
]

CheckVideo = Callable[[str, "str | None", bool, Context[AppContext, Any]], Awaitable[videos.VideoPlan]]
ConfirmVideo = Callable[..., Awaitable["Elicit[SpendConfirmation] | SpendConfirmation"]]
Pay = Callable[
    [Context[AppContext, Any], videos.VideoPlan, ElicitationResult[SpendConfirmation], float],
    Awaitable[CallToolResult],
]


def register(
    server: MCPServer[AppContext],
    settings: Settings,
    principal: Callable[[], str],
    confirm_seconds: float = spend.CONFIRM_SECONDS,
) -> None:
    """The video tools, in the order clients list them: generate_video (asking before it spends, or
    not, as CUTOUT_CONFIRM_SPEND says), then get_video_result."""

    # generate_video's resolvers; they stay here, where the SDK's key for a spend question (the
    # resolver's qualified name) has always named them
    async def check_video(
        image_url: str, prompt: str | None, force_new: bool, ctx: Context[AppContext, Any]
    ) -> videos.VideoPlan:
        return await videos.plan_video(
            app_of(ctx), principal(), image_url, prompt, force_new=force_new, session=current_session(ctx)
        )

    async def confirm_video(
        plan: Annotated[videos.VideoPlan, Resolve(check_video)], ctx: Context[AppContext, Any]
    ) -> Elicit[SpendConfirmation] | SpendConfirmation:
        return await spend.ask(plan, ctx, confirm_seconds)

    pay = _payer(settings, principal)
    if settings.confirm_spend_above is None:
        _register_generate_video_unasked(server, settings, check_video, pay)
    else:
        _register_generate_video_confirmed(server, settings, check_video, confirm_video, pay)
    _register_get_video_result(server, principal)


def _register_generate_video_unasked(
    server: MCPServer[AppContext], settings: Settings, check_video: CheckVideo, pay: Pay
) -> None:
    """CUTOUT_CONFIRM_SPEND=off: the same checks in the body, without the SDK's resolver round (see
    `edit_tools`); the input schema is the same."""
    VideoImageUrl = Annotated[str, _video_image_url_field(settings)]

    @_generate_video_tool(server)
    async def generate_video(
        image_url: VideoImageUrl,
        ctx: Context[AppContext, Any],
        prompt: Prompt = None,
        wait_seconds: WaitSeconds = settings.wait_seconds,
        force_new: ForceNew = False,
    ) -> Annotated[CallToolResult, VideoJob]:
        plan = await check_video(image_url, prompt, force_new, ctx)
        return await pay(ctx, plan, spend.NOT_ASKED, wait_seconds)


def _register_generate_video_confirmed(
    server: MCPServer[AppContext], settings: Settings, check_video: CheckVideo, confirm_video: ConfirmVideo, pay: Pay
) -> None:
    VideoImageUrl = Annotated[str, _video_image_url_field(settings)]

    @_generate_video_tool(server)
    async def generate_video(
        image_url: VideoImageUrl,
        ctx: Context[AppContext, Any],
        plan: Annotated[videos.VideoPlan, Resolve(check_video)],
        confirmation: Annotated[ElicitationResult[SpendConfirmation], Resolve(confirm_video)],
        prompt: Prompt = None,
        wait_seconds: WaitSeconds = settings.wait_seconds,
        force_new: ForceNew = False,
    ) -> Annotated[CallToolResult, VideoJob]:
        return await pay(ctx, plan, confirmation, wait_seconds)


def _register_get_video_result(server: MCPServer[AppContext], principal: Callable[[], str]) -> None:
    @server.tool(
        title="Check on a video job",
        description=texts.GET_VIDEO_RESULT,
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True
        ),
        meta=views.tool_meta("get_video_result"),
    )
    async def get_video_result(
        id: JobId, ctx: Context[AppContext, Any], wait_seconds: ResultWaitSeconds = 0
    ) -> Annotated[CallToolResult, VideoJob]:
        delivered = await videos.get_video_result(
            app_of(ctx), principal(), id, wait_seconds=wait_seconds, on_progress=progress_sender(ctx)
        )
        return call_result(delivered)


def _generate_video_tool(server: MCPServer[AppContext]) -> Callable[[Callable[..., Any]], Any]:
    return server.tool(
        title="Generate a video from an image",
        description=texts.GENERATE_VIDEO,
        annotations=PAID_TOOL,
        meta=views.tool_meta("generate_video"),
    )


def _video_image_url_field(settings: Settings) -> Any:
    """The image argument's constraints: a URL (plain http only from the origins `settings` trusts, the
    sandbox's), a local path, a `data:` URI or an `upload:` reference."""
    return Field(
        description=texts.VIDEO_IMAGE_URL,
        pattern=image_pattern(https_only=False, trusted_origins=settings.trusted_image_origins),
        max_length=MAX_IMAGE_ARGUMENT_CHARS,
    )


def _payer(settings: Settings, principal: Callable[[], str]) -> Pay:
    async def pay(
        ctx: Context[AppContext, Any],
        plan: videos.VideoPlan,
        confirmation: ElicitationResult[SpendConfirmation],
        wait_seconds: float,
    ) -> CallToolResult:
        consent = spend.consent_for(plan, confirmation, settings.confirm_spend_above)
        # Checked and confirmed: from here a task-declaring client gets a task, and no client call limit
        # applies to it, so it waits for the job itself, within a generous bound.
        tasked = await begin_task()
        delivered = await videos.generate_video(
            app_of(ctx),
            principal(),
            plan,
            consent=consent,
            wait_seconds=TASK_MAX_WAIT_SECONDS if tasked else wait_seconds,
            on_progress=progress_sender(ctx),
            on_submitted=_show_in_task if tasked else None,
        )
        return call_result(delivered)

    return pay


def _show_in_task(job_id: int, credits: int) -> None:
    set_status(
        texts.task_submitted(job_id, credits),
        resume_hint=texts.task_resume_hint(job_id, videos.next_step(job_id)),
        job_id=job_id,
        credits=credits,
    )
