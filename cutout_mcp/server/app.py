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

import httpx
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError, UnexpectedToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from cutout_mcp import __version__, catalog
from cutout_mcp.clock import Clock, SystemClock
from cutout_mcp.config import Settings
from cutout_mcp.core.downloads import Downloads
from cutout_mcp.core.ledger import BudgetExceededError, Ledger, open_ledger
from cutout_mcp.core.locks import KeyedLocks
from cutout_mcp.core.paid import Dedupe, LedgerUnavailableError, Paid, PaidCalls
from cutout_mcp.core.preflight import ImageInspector, open_inspector
from cutout_mcp.core.results import EditResult, JobList, JobStatus, VideoJob, iso_from_millis
from cutout_mcp.core.validation import (
    InvalidArgumentError,
    check_edit_images,
    check_image_url,
    check_prompt,
    parse_job_id,
    url_pattern,
)
from cutout_mcp.core.watch import JobWatcher, PollPolicy
from cutout_mcp.server.arguments import describe_invalid_arguments
from cutout_mcp.server.auth import auth_options
from cutout_mcp.server.principal import current_principal
from cutout_mcp.server.tasks import TASK_MAX_WAIT_SECONDS, TasksExtension, in_task, set_status
from cutout_mcp.upstream.client import CutoutClient, RetryPolicy
from cutout_mcp.upstream.errors import CutoutError
from cutout_mcp.upstream.models import UpstreamEditResult

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
    ledger: Ledger
    watcher: JobWatcher
    paid: PaidCalls
    inspector: ImageInspector | None = None
    """Pre-flight image checks; None when CUTOUT_PREFLIGHT=off."""


INSTRUCTIONS = f"""\
cutout-mcp turns still images into short videos and edits images with cutout.pro. Every paid call \
spends the user's cutout.pro credits, so call paid tools only when the user asked for the result.

- edit_image: edit 1-{catalog.MAX_EDIT_IMAGES} reference images (public HTTPS JPEG/PNG URLs) with a prompt; \
answers with the edited image's URL. Costs 4 credits, 15 with gemini-3-pro-image-preview.
- generate_video: start an image-to-video job ({catalog.VIDEO_CREDITS} credits) and wait a bounded time \
for it. Videos take minutes, so the result is often still 'queued' or 'processing'.
- get_video_result: free. Check on a video job by its id; with wait_seconds > 0 it waits for it.
- list_video_jobs: free. The user's video jobs, newest first, with credits spent: use it to find a job \
started in an earlier conversation.

Resuming: a job that is not finished when generate_video returns keeps running at cutout.pro. Keep its \
id and call get_video_result(id=..., wait_seconds=...) until status is 'succeeded' (then give the user \
result_url) or 'failed'. An identical generate_video call while the job runs returns the same job at no \
cost; force_new=true pays for another one, so use it only when the user asks for a second video.
"""


def _video_job_tip(job_id: int) -> str:
    return f"Call get_video_result with id={job_id} (optionally wait_seconds) to check on it again."


def _tool_error(exc: Exception) -> ToolError:
    return ToolError(str(exc))


@dataclass
class _Live:
    """The running AppContext, for static resources, which the SDK gives no Context."""

    app: AppContext | None = None


def _ledger_note(paid: Paid[Any]) -> str:
    return f" {paid.ledger_problem}" if paid.ledger_problem else ""


async def _submit_video(state: AppContext, url: str, text: str | None, *, force_new: bool) -> Paid[int]:
    """Submit once per identical request: reuse an unfinished identical job, else pay and record at once."""
    principal = current_principal()

    async def find() -> int | None:
        existing = await state.ledger.find_active(principal, url, text)
        if existing is not None:
            logger.info("Reusing unfinished video job %s instead of paying again", existing.id)
        return None if existing is None else existing.id

    async def record(charge: int, job_id: int) -> None:
        await state.ledger.record_video_job(charge, job_id, principal, url, text, catalog.VIDEO_CREDITS)

    return await state.paid.call(
        principal,
        "video",
        catalog.VIDEO_CREDITS,
        lambda: state.client.submit_video(url, text),
        record,
        dedupe=None if force_new else Dedupe((url, text), find),
    )


class CutoutServer(MCPServer[AppContext]):
    """MCPServer whose argument errors read as one sentence per argument, and whose results can be opened."""

    downloads: Downloads | None = None

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[AppContext, Any] | None = None
    ) -> Any:
        try:
            result = await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError) and not isinstance(exc, UnexpectedToolError):
                raise ToolError(describe_invalid_arguments(name, cause)) from cause
            raise
        return await self._openable(name, result)

    async def _openable(self, name: str, result: Any) -> Any:
        """Finished videos and edits gain local copies, resource links and a preview (see `downloads`).

        Done here, once, after the tool's own result is final; anything going wrong on the way returns
        that result unchanged, because an optional copy must never cost the user a paid result.
        """
        if self.downloads is None or not isinstance(result, CallToolResult) or result.is_error:
            return result
        data = result.structured_content
        if not data or name not in ("generate_video", "get_video_result", "edit_image"):
            return result
        try:
            model: VideoJob | EditResult
            if name == "edit_image":
                model, blocks = await self.downloads.keep_edit(EditResult.model_validate(data))
            else:
                model, blocks = await self.downloads.keep_video(VideoJob.model_validate(data))
        except Exception:
            logger.exception("Making the %s result openable failed; returning it as it was", name)
            return result
        text = TextContent(type="text", text=model.model_dump_json(indent=2))
        return CallToolResult(content=[text, *blocks], structured_content=model.model_dump(mode="json"))


def build_server(
    settings: Settings,
    *,
    http_transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
    retry: RetryPolicy | None = None,
    poll_policy: PollPolicy | None = None,
    extra_instructions: str = "",
    inspector: ImageInspector | None = None,
) -> MCPServer[AppContext]:
    """The MCP server for `settings`; the keyword arguments exist for tests and the sandbox."""
    the_clock = clock or SystemClock()
    tasks = TasksExtension(task_tools=frozenset({"generate_video"}), clock=the_clock)
    live = _Live()

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppContext]) -> AsyncIterator[AppContext]:
        client = CutoutClient(settings, transport=http_transport, retry=retry, sleep=the_clock.sleep)
        policy = poll_policy or PollPolicy()
        # tasks end before the watcher's poll loops, and those before the ledger and the client close
        async with (
            client,
            open_ledger(settings.state_dir, the_clock) as ledger,
            JobWatcher(client.get_video, the_clock, policy, on_update=ledger.update_job).running() as watcher,
            tasks.running(),
        ):
            if not client.has_key:
                logger.warning("CUTOUT_API_KEY is not set: tools are listed, but every call will fail.")
            async with open_inspector(settings, inspector) as checker:
                paid = PaidCalls(ledger, settings.credit_budget, KeyedLocks())
                live.app = AppContext(settings, client, the_clock, policy, ledger, watcher, paid, inspector=checker)
                yield live.app

    server = CutoutServer(
        "cutout-mcp",
        title="cutout.pro video and image editing",
        instructions=INSTRUCTIONS + extra_instructions,
        version=__version__,
        website_url="https://www.cutout.pro",
        lifespan=lifespan,
        log_level=settings.log_level,
        extensions=[tasks],
        **auth_options(settings),
    )
    _register_tools(server, settings)
    server.downloads = Downloads(settings.output_dir, preview=settings.edit_preview)
    _register_ledger(server, live)
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
            "resume it with get_video_result(id). Do not call this again for the same request: while an "
            "identical job (same image_url and prompt) is unfinished, that job is returned instead, free; "
            "force_new=true pays for a new one anyway. A client "
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
        force_new: Annotated[
            bool,
            Field(
                description=(
                    "Pay for a new job even while an identical one (same image_url and prompt) is still "
                    "queued or processing. Without it, that unfinished job is returned instead, free."
                )
            ),
        ] = False,
    ) -> VideoJob:
        state = app(ctx)
        try:
            url = check_image_url(image_url, "image_url", https_only=False, trusted_origins=trusted)
            text = check_prompt(prompt, required=False)
            if state.inspector is not None and state.client.has_key:  # keyless calls fail first
                await state.inspector.check_video_image(url)
            submitted = await _submit_video(state, url, text, force_new=force_new)
        except (InvalidArgumentError, CutoutError, BudgetExceededError, LedgerUnavailableError) as exc:
            raise _tool_error(exc) from None
        job_id, charged = submitted.value, submitted.credits
        logger.info("Submitted video job %s" if charged else "Returning unfinished video job %s", job_id)
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
            job = await state.watcher.wait(
                job_id, wait_seconds, credits_charged=charged, on_progress=progress_sender(ctx)
            )
        except Exception as exc:
            cost = f"{charged} credits" if charged else "earlier; nothing charged now"
            raise ToolError(
                f"Video job {job_id} was submitted ({cost}), but reading its state "
                f"failed: {exc} {_video_job_tip(job_id)}"
            ) from None
        if not charged:
            job = job.model_copy(update={"message": f"{_REUSED.format(id=job_id)} {job.message}"})
        elif submitted.ledger_problem:
            job = job.model_copy(update={"message": f"{job.message}{_ledger_note(submitted)}"})
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
            owner = await state.ledger.owner(job_id)
            if owner is not None and owner != current_principal():
                raise ToolError(f"No video job {job_id} is known for you. Check the id with list_video_jobs.")
            job = await state.watcher.wait(job_id, wait_seconds, on_progress=progress_sender(ctx))
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
            if state.inspector is not None and state.client.has_key:  # keyless calls fail first
                await state.inspector.check_edit_images(urls, entry)
            principal = current_principal()

            async def record(charge: int, edited: UpstreamEditResult) -> None:
                await state.ledger.record_edit(charge, edited.id, entry.name)

            paid = await state.paid.call(
                principal,
                "edit",
                entry.credits,
                lambda: state.client.edit_image(text, entry.name, aspect_ratio, urls),
                record,
            )
        except (InvalidArgumentError, CutoutError, BudgetExceededError, LedgerUnavailableError) as exc:
            raise _tool_error(exc) from None
        result = paid.value
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
            message=f"Edited with {entry.name} for {entry.credits} credits.{_ledger_note(paid)}",
        )


_REUSED = (
    "This is the existing video job {id} for the same image and prompt, still unfinished, so nothing was "
    "charged; call generate_video with force_new=true only if a second video is really wanted."
)


def _register_ledger(server: MCPServer[AppContext], live: _Live) -> None:
    """list_video_jobs and the cutout:// resources: the ledger, scoped to the caller."""

    def ledger() -> Ledger:
        if live.app is None:
            raise RuntimeError("the server is not running")
        return live.app.ledger

    def budget() -> int | None:
        return live.app.settings.credit_budget if live.app is not None else None

    @server.tool(
        title="List my video jobs",
        description=(
            "List the video jobs you started on this server, newest first, from its job ledger (free; "
            "nothing is sent to cutout.pro). Status is as of each job's last check: call get_video_result(id) "
            "for the current state. Use it to find a job from an earlier conversation. Also reports the "
            "credits spent and, if a budget is set, what remains."
        ),
        annotations=ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def list_video_jobs(
        status: Annotated[
            JobStatus | None, Field(description="Only jobs in this state (as last seen); all when omitted.")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="At most this many jobs (1-100).")] = 20,
    ) -> JobList:
        principal = current_principal()
        jobs = await ledger().list_jobs(principal, status, limit)
        credits = await ledger().credits(principal, budget())
        which = f" {status}" if status else ""
        return JobList(jobs=jobs, credits=credits, message=f"{len(jobs)}{which} video job(s), newest first.")

    @server.resource(
        "cutout://jobs",
        name="video_jobs",
        title="My video jobs",
        description="Your 100 newest video jobs from the job ledger, newest first, with credits spent (JSON).",
        mime_type="application/json",
    )
    async def jobs_resource() -> str:
        principal = current_principal()
        jobs = await ledger().list_jobs(principal, None, 100)
        credits = await ledger().credits(principal, budget())
        return JobList(jobs=jobs, credits=credits, message=f"{len(jobs)} video job(s), newest first.").model_dump_json(
            indent=2
        )

    @server.resource(
        "cutout://jobs/{id}",
        name="video_job",
        title="A video job",
        description="One of your video jobs as the ledger last saw it (JSON); get_video_result gives the live state.",
        mime_type="application/json",
    )
    async def job_resource(id: str) -> str:
        job = await ledger().get_job(current_principal(), int(id)) if id.isdigit() and len(id) < 20 else None
        if job is None:
            raise ResourceNotFoundError(f"No video job {id} in the ledger for you.")
        return job.model_dump_json(indent=2)

    @server.resource(
        "cutout://credits",
        name="credits",
        title="Credits spent",
        description="Credits recorded as spent (yours and in total) and what CUTOUT_CREDIT_BUDGET leaves (JSON).",
        mime_type="application/json",
    )
    async def credits_resource() -> str:
        return (await ledger().credits(current_principal(), budget())).model_dump_json(indent=2)


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
