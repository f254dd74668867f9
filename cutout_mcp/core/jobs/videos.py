"""The video tools' bodies: submit once, wait within a bound, report what happened. No MCP here.

A submit is two steps, so that a spend confirmation can be asked between them (`core.money.consent`):
`plan_video` does every free check and states the spend, `generate_video` pays for a plan and waits.
Every message after a successful submit names the job id, so a paid job is never lost: an unfinished
job comes back with the next step, a failed read names the id to resume with, and a job that failed at
cutout.pro is an error naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from cutout_mcp import catalog
from cutout_mcp.config import Settings
from cutout_mcp.core.context import AppContext
from cutout_mcp.core.inputs.image_rules import check_video_facts
from cutout_mcp.core.inputs.image_sources import load_image
from cutout_mcp.core.inputs.staged import PlannedImage
from cutout_mcp.core.inputs.validation import check_prompt, parse_job_id
from cutout_mcp.core.jobs.pace import ProgressCallback
from cutout_mcp.core.money.consent import Consent, Spend, needs_confirmation, question_for
from cutout_mcp.core.money.paid import Dedupe, Paid
from cutout_mcp.core.results import Delivered, JobError, JobList, JobStatus, VideoJob
from cutout_mcp.errors import CutoutMcpError
from cutout_mcp.upstream.errors import CutoutError, MissingApiKeyError

logger = logging.getLogger(__name__)

OnSubmitted = Callable[[int, int], None]
"""`(job_id, credits_charged)`, called once the job id is known and before any waiting."""

REUSED = (
    "This is the existing video job {id} for the same image and prompt, still unfinished, so nothing was "
    "charged; call generate_video with force_new=true only if a second video is really wanted."
)


NOT_YOURS = (
    "Video job {id} is not one of yours on this server, so it was not read (nothing was sent to cutout.pro). "
    "list_video_jobs shows the jobs you made here; check the id there."
)

UNRECORDED = (
    "This server has several users and reads only the jobs its ledger records as theirs, so get_video_result "
    "will refuse this id: keep this answer."
)


def one_user(settings: Settings) -> bool:
    """Whether every caller is the same principal: stdio, or HTTP without tokens or OAuth."""
    return settings.transport == "stdio" or not (settings.mcp_tokens or settings.oauth_issuer)


def next_step(job_id: int) -> str:
    return f"Call get_video_result with id={job_id} (optionally wait_seconds) to check on it again."


@dataclass(frozen=True)
class VideoPlan:
    """A video request that passed every free check: what will be sent, what it costs, what to ask first."""

    image: PlannedImage
    """The source: its label (shown), its identity (what makes two requests the same) and how to send it."""
    prompt: str | None
    force_new: bool
    spend: Spend
    question: str | None
    """The spend confirmation to ask before paying, or None when `CUTOUT_CONFIRM_SPEND` does not ask."""
    planned_at: float
    """When the checks ran: time spent asking the user counts against the call's wait bound."""
    session: str | None = None
    """The key of the caller's MCP session, which a session cap counts (`core.storage.limits`)."""


async def plan_video(
    app: AppContext,
    principal: str,
    image_url: str,
    prompt: str | None,
    *,
    force_new: bool = False,
    session: str | None = None,
) -> VideoPlan:
    """Check the arguments and the image (free), and state the spend: nothing when an identical
    unfinished job would be returned instead."""
    started = app.clock.now()
    source = await load_image(
        image_url,
        "image_url",
        settings=app.settings,
        store=app.staging,
        check=check_video_facts,
        https_only=False,
        digest=app.staged.digester,
    )
    text = check_prompt(prompt, required=False)
    if not app.client.has_key:  # refused before fetching images or asking the user
        raise MissingApiKeyError()
    image = await app.staged.plan(source)
    if app.inspector is not None and image.remote_url is not None:
        await app.inspector.check_video_image(image.remote_url)
    credits = catalog.VIDEO_CREDITS
    asking = needs_confirmation(app.settings.confirm_spend_above, credits) and not force_new
    if asking and await app.ledger.find_active(principal, image.identity, text) is not None:
        credits = 0  # a reuse is free, so nobody is asked; PaidCalls re-checks when it pays
    spend = Spend("generate_video", "image-to-video", (image.label,), text, credits)
    question = await question_for(app.ledger, app.settings, principal, spend, app.paid.limits(principal, session))
    return VideoPlan(image, text, force_new, spend, question, started, session)


async def submit_video(app: AppContext, principal: str, plan: VideoPlan, consent: Consent | None = None) -> Paid[int]:
    """Pay for the job once per identical unfinished request (identical: same image content and prompt).

    A staged image is put in the store (once) before paying; if nothing was charged in the end, it is
    released again, and an upload it came from is deleted once a job uses its content."""
    image, text = plan.image, plan.prompt

    async def find() -> int | None:
        existing = await app.ledger.find_active(principal, image.identity, text)
        if existing is not None:
            logger.info("Reusing unfinished video job %s instead of paying again", existing.id)
        return None if existing is None else existing.id

    async def record(charge: int, job_id: int) -> None:
        await app.ledger.record_video_job(
            charge,
            job_id,
            principal,
            image.label,
            text,
            catalog.VIDEO_CREDITS,
            image_ref=image.identity,
            staged_key=image.staged_key,
        )

    used = False
    try:
        async with app.staged.holding([image]):
            url = await app.staged.url(image)
            paid = await app.paid.call(
                principal,
                "video",
                catalog.VIDEO_CREDITS,
                lambda: app.client.submit_video(url, text),
                record,
                dedupe=None if plan.force_new else Dedupe((image.identity, text), find),
                consent=consent,
                session=plan.session,
                model=catalog.VIDEO_MODEL,
            )
            used = True
    except CutoutError as exc:
        used = exc.may_have_charged  # cutout.pro may fetch it for a job whose id was lost: keep it
        raise
    finally:
        if image.staged_key is not None and not used:
            await app.staged.release(image.staged_key)
    if paid.credits == 0:  # an identical unfinished job answered: nothing will record this call's upload
        await app.staged.drop_upload_answered_by(image, paid.value)
    else:
        await app.staged.drop_uploads([image])
    return paid


async def generate_video(
    app: AppContext,
    principal: str,
    plan: VideoPlan,
    *,
    wait_seconds: float,
    consent: Consent | None = None,
    on_progress: ProgressCallback | None = None,
    on_submitted: OnSubmitted | None = None,
) -> Delivered[VideoJob]:
    """Submit (or reuse) the planned job, then wait for it until `wait_seconds` after the plan was made."""
    submitted = await submit_video(app, principal, plan, consent)
    job_id, charged = submitted.value, submitted.credits
    logger.info("Submitted video job %s" if charged else "Returning unfinished video job %s", job_id)
    if on_submitted is not None:
        on_submitted(job_id, charged)
    wait = max(0.0, wait_seconds - (app.clock.now() - plan.planned_at))
    try:
        job = await wait_for_job(app, job_id, wait, credits_charged=charged, on_progress=on_progress)
    except Exception as exc:
        if not isinstance(exc, CutoutMcpError):  # a bug: keep its traceback, and still name the job
            logger.exception("Reading video job %s failed unexpectedly", job_id)
        cost = f"{charged} credits" if charged else "earlier; nothing charged now"
        raise JobError(
            f"Video job {job_id} was submitted ({cost}), but reading its state failed: {exc} {next_step(job_id)}"
        ) from exc
    if not charged:
        job = job.model_copy(update={"message": f"{REUSED.format(id=job_id)} {job.message}"})
    elif submitted.ledger_problem:
        unresumable = "" if one_user(app.settings) else f" {UNRECORDED}"
        job = job.model_copy(update={"message": f"{job.message} {submitted.ledger_problem}{unresumable}"})
    return await app.downloads.deliver_video(_finish(job))


async def get_video_result(
    app: AppContext,
    principal: str,
    job_id: int | str,
    *,
    wait_seconds: float = 0,
    on_progress: ProgressCallback | None = None,
    owned: bool = False,
) -> Delivered[VideoJob]:
    """Read a job (free); with `wait_seconds` > 0, wait for it the same way as generate_video.

    A job another caller made is refused. So is one the ledger does not know, when the server has several
    principals: it was made outside this server (with the same key) or its record was lost, and either way
    nothing says it is this caller's. With one user (stdio) it is read, so a job made elsewhere can be
    resumed. `owned` says the caller's ownership is on record elsewhere (a task's row names the job).
    """
    number = parse_job_id(job_id)
    owner = await app.ledger.owner(number)
    unknown_refused = owner is None and not owned and not one_user(app.settings)
    if (owner is not None and owner != principal) or unknown_refused:
        raise JobError(NOT_YOURS.format(id=number))
    job = await wait_for_job(app, number, wait_seconds, on_progress=on_progress)
    return await app.downloads.deliver_video(_finish(job))


async def list_video_jobs(
    app: AppContext, principal: str, status: JobStatus | None = None, limit: int = 20, *, session: str | None = None
) -> JobList:
    """The caller's jobs from the ledger, newest first, with the credits spent and the caller's own allowance
    (in `session`, when one is known), free: nothing is sent."""
    await app.staged.sweep()  # finished jobs the ledger knows of give their staged images up
    jobs = await app.ledger.list_jobs(principal, status, limit)
    credits = await app.ledger.credits(principal, app.settings.credit_budget, app.paid.limits(principal, session))
    which = f" {status}" if status else ""
    return JobList(jobs=jobs, credits=credits, message=f"{len(jobs)}{which} video job(s), newest first.")


async def wait_for_job(
    app: AppContext, job_id: int, wait_seconds: float, *, credits_charged: int = 0, on_progress: ProgressCallback | None
) -> VideoJob:
    """`watcher.wait`, cut short when the server starts stopping: the job as it stands then (one read)."""
    with app.drain.cut_short() as scope:
        return await app.watcher.wait(job_id, wait_seconds, credits_charged=credits_charged, on_progress=on_progress)
    assert scope.cancelled_caught
    return await app.watcher.wait(job_id, 0, credits_charged=credits_charged)


def _finish(job: VideoJob) -> VideoJob:
    """A failed job becomes an error naming it; an unfinished one gets its next step."""
    if job.status == "failed":
        raise JobError(
            f"Video job {job.id} failed at cutout.pro (status: failed). Its credits are spent; "
            "try another image or prompt with a new generate_video call."
        )
    if job.finished:
        return job
    return job.model_copy(update={"next_step": next_step(job.id)})
