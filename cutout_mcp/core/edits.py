"""The edit tool's body: check everything that can be checked for free, pay once, return the edit.

Two steps, so that a spend confirmation can be asked between them (`core.money.consent`): `plan_edit` does
every free check (arguments, image pre-flight) and states the spend; `edit_image` pays for a plan. No MCP
here. An edit cutout.pro reports as failed is an error naming the edit id; its credits were
spent, and the message says so by pointing at another prompt or model rather than a retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from cutout_mcp.catalog import EditModel
from cutout_mcp.core.context import AppContext
from cutout_mcp.core.inputs.image_rules import ImageFacts, check_edit_facts
from cutout_mcp.core.inputs.image_sources import load_image
from cutout_mcp.core.inputs.staged import PlannedImage
from cutout_mcp.core.inputs.validation import check_edit_images, check_prompt
from cutout_mcp.core.money.consent import Consent, Spend, question_for
from cutout_mcp.core.results import Delivered, EditResult, JobError, iso_from_millis
from cutout_mcp.upstream.errors import CutoutError, MissingApiKeyError, UpstreamError

if TYPE_CHECKING:
    from cutout_mcp.upstream.models import UpstreamEditResult


@dataclass(frozen=True)
class EditPlan:
    """An edit that passed every free check: what will be sent, what it costs, what to ask first."""

    prompt: str
    images: list[PlannedImage]
    """Each source: its label (shown) and how to send it (a URL as given, or staged bytes)."""
    entry: EditModel
    aspect_ratio: str
    spend: Spend
    question: str | None
    """The spend confirmation to ask before paying, or None when `CUTOUT_CONFIRM_SPEND` does not ask."""
    session: str | None = None
    """The key of the caller's MCP session, which a session cap counts (`core.storage.limits`)."""


async def plan_edit(
    app: AppContext,
    principal: str,
    prompt: str,
    image_urls: list[str],
    model: str,
    aspect_ratio: str = "original",
    *,
    session: str | None = None,
) -> EditPlan:
    """Check the arguments and the images (free), and state the spend."""
    text = check_prompt(prompt, required=True)
    assert text is not None
    entry = check_edit_images(model, image_urls)
    check = partial(_check_for_model, model=entry)
    digest = app.staged.digester
    sources = [
        await load_image(
            url,
            f"image_urls[{i}]",
            settings=app.settings,
            store=app.staging,
            check=check,
            https_only=True,
            digest=digest,
        )
        for i, url in enumerate(image_urls)
    ]
    if not app.client.has_key:  # refused before fetching images or asking the user
        raise MissingApiKeyError()
    images = [await app.staged.plan(source) for source in sources]
    remote = [(i, image.remote_url) for i, image in enumerate(images) if image.remote_url is not None]
    if app.inspector is not None:
        for index, url in remote:
            await app.inspector.check_edit_images([url], entry, first_index=index)
    spend = Spend("edit_image", entry.name, tuple(image.label for image in images), text, entry.credits)
    question = await question_for(app.ledger, app.settings, principal, spend, app.paid.limits(principal, session))
    return EditPlan(text, images, entry, aspect_ratio, spend, question, session)


def _check_for_model(argument: str, facts: ImageFacts, *, model: EditModel) -> None:
    check_edit_facts(argument, facts, model)


async def edit_image(
    app: AppContext, principal: str, plan: EditPlan, consent: Consent | None = None
) -> Delivered[EditResult]:
    """Pay for the planned edit once and return it (with a preview); `consent` covers a confirmed spend."""
    text, images, entry, aspect_ratio = plan.prompt, plan.images, plan.entry, plan.aspect_ratio

    async def record(charge: int, edited: UpstreamEditResult) -> None:
        await app.ledger.record_edit(charge, edited.id, entry.name)

    keep = False
    try:
        async with app.staged.holding(images):
            urls = [await app.staged.url(image) for image in images]
            paid = await app.paid.call(
                principal,
                "edit",
                entry.credits,
                lambda: app.client.edit_image(text, entry.name, aspect_ratio, urls),
                record,
                consent=consent,
                session=plan.session,
                model=entry.name,
                detail=entry.name,
            )
    except CutoutError as exc:
        keep = exc.may_have_charged and not isinstance(exc, UpstreamError)  # not answered: may still fetch
        raise
    finally:
        if not keep:  # answered (or never sent): cutout.pro is done with the staged copies
            for key in {image.staged_key for image in images if image.staged_key is not None}:
                await app.staged.release(key)
    await app.staged.drop_uploads(images, keep_for_jobs=False)  # an edit is finished once answered
    result = paid.value
    if result.status != 1 or not result.image_url:
        reason = result.fail_reason or "no reason given"
        raise JobError(
            f"cutout.pro could not edit the image (edit {result.id}, status failed: {reason}). "
            "Try another prompt or model."
        )
    note = f" {paid.ledger_problem}" if paid.ledger_problem else ""
    edit = EditResult(
        id=result.id,
        status="succeeded",
        image_url=result.image_url,
        model=result.model or entry.name,
        aspect_ratio=result.aspect_ratios or aspect_ratio,
        prompt=text,
        reference_image_urls=[image.label for image in images],
        duration_seconds=result.duration,
        created_at=iso_from_millis(result.created_at),
        credits_charged=entry.credits,
        message=f"Edited with {entry.name} for {entry.credits} credits.{note}",
    )
    return await app.downloads.deliver_edit(edit)
