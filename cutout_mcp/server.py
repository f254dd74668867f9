"""build_server(settings) -> MCPServer: the three tools, thin, over a shared client.

The lifespan owns the one `CutoutClient` (and its connection pool); tools
only validate, call, and shape the answer. Schemas and descriptions are
built from `catalog`, so what a client is told matches what is checked.

This module deliberately has no `from __future__ import annotations`: the
SDK reads the tools' annotations at registration, and several are built
from settings inside `build_server`.
"""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import httpx
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError

from . import __version__, catalog
from .arguments import describe_invalid_arguments
from .client import CutoutClient, RetryPolicy
from .config import Settings
from .errors import CutoutError
from .jobs import Clock, MonotonicClock, PollPolicy, wait_for_job
from .models import EditResult, VideoJob, iso_from_millis
from .tasks import TASK_MAX_WAIT_SECONDS, TasksExtension, in_task, set_status
from .validation import (
    InvalidArgumentError,
    check_edit_images,
    check_image_url,
    check_prompt,
    parse_job_id,
    url_pattern,
)

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    EditModelName = str
    AspectRatio = str
else:
    EditModelName = Literal[catalog.EDIT_MODEL_NAMES]
    AspectRatio = Literal[catalog.ASPECT_RATIOS]


@dataclass
class AppContext:
    """What every tool call shares, created and closed by the lifespan."""

    settings: Settings
    client: CutoutClient
    clock: Clock
    poll_policy: PollPolicy


INSTRUCTIONS = f"""\
cutout-mcp turns still images into short videos and edits images with cutout.pro. Every paid call \
spends the user's cutout.pro credits, so call paid tools only when the user asked for the result.

- edit_image: edit 1-{catalog.MAX_EDIT_IMAGES} reference images (public HTTPS JPEG/PNG URLs) with a prompt; \
answers with the edited image's URL. Costs 4 credits, 15 with gemini-3-pro-image-preview.
- generate_video: start an image-to-video job ({catalog.VIDEO_CREDITS} credits) and wait a bounded time \
for it. Videos take minutes, so the result is often still 'queued' or 'processing'.
- get_video_result: free. Check on a video job by its id; with wait_seconds > 0 it waits for it.

Resuming: a job that is not finished when generate_video returns keeps running at cutout.pro. Keep its \
id and call get_video_result(id=..., wait_seconds=...) until status is 'succeeded' (then give the user \
result_url) or 'failed'. Never call generate_video again for the same request: that pays twice.
"""


def _video_job_tip(job_id: int) -> str:
    return f"Call get_video_result with id={job_id} (optionally wait_seconds) to check on it again."


def _tool_error(exc: Exception) -> ToolError:
    return ToolError(str(exc))


class CutoutServer(MCPServer[AppContext]):
    """MCPServer whose argument errors read as one sentence per argument."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[AppContext, Any] | None = None
    ) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError) and not isinstance(exc, UnexpectedToolError):
                raise ToolError(describe_invalid_arguments(name, cause)) from cause
            raise


def build_server(
    settings: Settings,
    *,
    http_transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
    retry: RetryPolicy | None = None,
    poll_policy: PollPolicy | None = None,
    extra_instructions: str = "",
) -> MCPServer[AppContext]:
    """The MCP server for `settings`; the keyword arguments exist for tests and the sandbox."""
    the_clock = clock or MonotonicClock()
    tasks = TasksExtension(task_tools=frozenset({"generate_video"}))

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppContext]) -> AsyncIterator[AppContext]:
        client = CutoutClient(settings, transport=http_transport, retry=retry, sleep=the_clock.sleep)
        async with client, tasks.running():  # tasks end before the client closes
            if not client.has_key:
                logger.warning("CUTOUT_API_KEY is not set: tools are listed, but every call will fail.")
            yield AppContext(settings, client, the_clock, poll_policy or PollPolicy())

    server = CutoutServer(
        "cutout-mcp",
        title="cutout.pro video and image editing",
        instructions=INSTRUCTIONS + extra_instructions,
        version=__version__,
        website_url="https://www.cutout.pro",
        lifespan=lifespan,
        extensions=[tasks],
    )
    _register_tools(server, settings)
    return server


def _register_tools(server: MCPServer[AppContext], settings: Settings) -> None:
    trusted = settings.trusted_image_origins
    VideoImageUrl = Annotated[
        str,
        Field(
            description=(
                f"Public http(s) URL of the source image: JPEG or PNG, sides between "
                f"{catalog.VIDEO_MIN_SIDE_PX} and {catalog.VIDEO_MAX_SIDE_PX} px, at most "
                f"{catalog.MAX_IMAGE_BYTES // (1024 * 1024)} MB."
            ),
            pattern=url_pattern(https_only=False, trusted_origins=trusted),
            max_length=catalog.MAX_URL_CHARS,
        ),
    ]
    EditImageUrl = Annotated[
        str,
        Field(
            pattern=url_pattern(https_only=True, trusted_origins=trusted),
            max_length=catalog.MAX_URL_CHARS,
        ),
    ]
    WaitSeconds = Annotated[
        float,
        Field(
            ge=0,
            le=catalog.MAX_WAIT_SECONDS,
            description=(
                "How long to wait for the job before returning it as it stands. Many clients abandon a "
                "call after about 60 s, so keep it below that."
            ),
        ),
    ]
    JobId = Annotated[
        Annotated[int, Field(ge=1, le=catalog.MAX_JOB_ID)] | Annotated[str, Field(pattern=r"^\s*[0-9]{1,19}\s*$")],
        Field(description="The job id generate_video returned (an integer; a digit string is accepted too)."),
    ]

    def app(ctx: Context[AppContext, Any]) -> AppContext:
        return ctx.request_context.lifespan_context

    def progress_sender(ctx: Context[AppContext, Any]) -> Callable[[float, float, str], Any]:
        async def send(progress: float, total: float, message: str) -> None:
            if in_task():  # a task's request stream is gone: progress goes to tasks/get instead
                set_status(message)
            else:
                await ctx.report_progress(progress, total, message)

        return send

    @server.tool(
        title="Generate a video from an image",
        description=(
            f"Turn a still image into a short video with cutout.pro. COSTS {catalog.VIDEO_CREDITS} CREDITS "
            "per call, whatever the outcome. Submits the job, then waits up to wait_seconds for it while "
            "reporting progress; returns the job, finished or not. An unfinished job keeps running: "
            "resume it with get_video_result(id). Do not call this again for the same request. A client "
            "that supports MCP tasks gets a task instead, which waits for the finished video."
        ),
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
        ),
    )
    async def generate_video(
        image_url: VideoImageUrl,
        ctx: Context[AppContext, Any],
        prompt: Annotated[
            str | None,
            Field(
                description="Optional keywords that steer the motion and look of the video.",
                max_length=catalog.MAX_PROMPT_CHARS,
            ),
        ] = None,
        wait_seconds: WaitSeconds = settings.wait_seconds,
    ) -> VideoJob:
        state = app(ctx)
        try:
            url = check_image_url(image_url, "image_url", https_only=False, trusted_origins=trusted)
            text = check_prompt(prompt, required=False)
            with anyio.CancelScope(shield=True):  # once sent, the paid submit's job id must not be lost
                job_id = await state.client.submit_video(url, text)
        except (InvalidArgumentError, CutoutError) as exc:
            raise _tool_error(exc) from None
        logger.info("Submitted video job %s", job_id)
        if in_task():  # no client call limit applies: wait for the job itself, within a generous bound
            wait_seconds = TASK_MAX_WAIT_SECONDS
            set_status(
                f"Video job {job_id} was submitted ({catalog.VIDEO_CREDITS} credits); waiting for cutout.pro.",
                resume_hint=(
                    f"Video job {job_id} itself cannot be cancelled at cutout.pro: it keeps running and its "
                    f"credits are spent. {_video_job_tip(job_id)}"
                ),
            )
        try:
            job = await wait_for_job(
                state.client,
                job_id,
                wait_seconds,
                credits_charged=catalog.VIDEO_CREDITS,
                clock=state.clock,
                policy=state.poll_policy,
                on_progress=progress_sender(ctx),
            )
        except Exception as exc:
            raise ToolError(
                f"Video job {job_id} was submitted ({catalog.VIDEO_CREDITS} credits), but reading its state "
                f"failed: {exc} {_video_job_tip(job_id)}"
            ) from None
        return _finish(job)

    @server.tool(
        title="Check on a video job",
        description=(
            "Read a video job started by generate_video (free). With wait_seconds > 0, waits up to that "
            "long for it to finish while reporting progress. Returns the job; when status is 'succeeded', "
            "result_url is the video."
        ),
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True
        ),
    )
    async def get_video_result(
        id: JobId,
        ctx: Context[AppContext, Any],
        wait_seconds: Annotated[
            float,
            Field(ge=0, le=catalog.MAX_WAIT_SECONDS, description="How long to wait for the job to finish."),
        ] = 0,
    ) -> VideoJob:
        state = app(ctx)
        try:
            job_id = parse_job_id(id)
            job = await wait_for_job(
                state.client,
                job_id,
                wait_seconds,
                clock=state.clock,
                policy=state.poll_policy,
                on_progress=progress_sender(ctx),
            )
        except (InvalidArgumentError, CutoutError) as exc:
            raise _tool_error(exc) from None
        return _finish(job)

    @server.tool(
        title="Edit images with a prompt",
        description=(
            "Edit 1 to 6 reference images with a prompt using one of cutout.pro's models, and return the "
            "edited image's URL. COSTS CREDITS per call: "
            + "; ".join(f"{m.name} {m.credits}" for m in catalog.EDIT_MODELS)
            + ". Images must be public HTTPS URLs of JPEG or PNG files, at most "
            + "; ".join(f"{m.max_images} for {m.name}" for m in catalog.EDIT_MODELS if m.max_images < 6)
            + ". seedream-4.0 also needs "
            + catalog.SEEDREAM_SIZE_RULES.describe()
            + "."
        ),
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
        ),
    )
    async def edit_image(
        prompt: Annotated[
            str,
            Field(
                min_length=1,
                max_length=catalog.MAX_PROMPT_CHARS,
                description="What to change, in plain language.",
            ),
        ],
        image_urls: Annotated[
            list[EditImageUrl],
            Field(
                min_length=catalog.MIN_EDIT_IMAGES,
                max_length=catalog.MAX_EDIT_IMAGES,
                description="HTTPS URLs of the reference images (JPEG or PNG).",
            ),
        ],
        ctx: Context[AppContext, Any],
        model: Annotated[
            EditModelName,
            Field(description="The editing model; see the tool description for prices and limits."),
        ] = catalog.DEFAULT_EDIT_MODEL,
        aspect_ratio: Annotated[
            AspectRatio,
            Field(description="Output aspect ratio; 'original' keeps the first image's."),
        ] = "original",
    ) -> EditResult:
        state = app(ctx)
        try:
            text = check_prompt(prompt, required=True)
            assert text is not None
            urls = [
                check_image_url(url, f"image_urls[{i}]", https_only=True, trusted_origins=trusted)
                for i, url in enumerate(image_urls)
            ]
            entry = check_edit_images(model, urls)
            result = await state.client.edit_image(text, entry.name, aspect_ratio, urls)
        except (InvalidArgumentError, CutoutError) as exc:
            raise _tool_error(exc) from None
        if result.status != 1 or not result.image_url:
            reason = result.fail_reason or "no reason given"
            raise ToolError(
                f"cutout.pro could not edit the image (edit {result.id}, status failed: {reason}). "
                "Try another prompt or model."
            )
        return EditResult(
            id=result.id,
            status="succeeded",
            image_url=result.image_url,
            model=result.model or entry.name,
            aspect_ratio=result.aspect_ratios or aspect_ratio,
            prompt=text,
            reference_image_urls=result.reference_image_url or urls,
            duration_seconds=result.duration,
            created_at=iso_from_millis(result.created_at),
            credits_charged=entry.credits,
            message=f"Edited with {entry.name} for {entry.credits} credits.",
        )


def _finish(job: VideoJob) -> VideoJob:
    """A failed job becomes a tool error naming it; an unfinished one gets its next step."""
    if job.status == "failed":
        raise ToolError(
            f"Video job {job.id} failed at cutout.pro (status: failed). Its credits are spent; "
            "try another image or prompt with a new generate_video call."
        )
    if job.finished:
        return job
    return job.model_copy(update={"next_step": _video_job_tip(job.id)})
