"""edit_image: its schema and annotations; the work is in `core.edits`, the spend confirmation in
`server.spend`.

No `from __future__ import annotations`: the SDK reads the annotations at registration, and the URL
pattern is built from settings when the tool is registered.
"""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.mcpserver import Context, Elicit, ElicitationResult, MCPServer, Resolve
from mcp.types import CallToolResult
from pydantic import Field

from cutout_mcp import catalog
from cutout_mcp.config import Settings
from cutout_mcp.core import edits
from cutout_mcp.core.context import AppContext
from cutout_mcp.core.inputs.image_sources import MAX_IMAGE_ARGUMENT_CHARS
from cutout_mcp.core.inputs.validation import image_pattern
from cutout_mcp.core.results import EditResult
from cutout_mcp.server import spend, texts, views
from cutout_mcp.server.calls import PAID_TOOL, app_of, call_result
from cutout_mcp.server.principal import current_session
from cutout_mcp.server.spend import SpendConfirmation

if TYPE_CHECKING:
    EditModelName = str
    AspectRatio = str
else:
    EditModelName = Literal[catalog.EDIT_MODEL_NAMES]
    AspectRatio = Literal[catalog.ASPECT_RATIOS]

Prompt = Annotated[
    str,
    Field(min_length=1, max_length=catalog.MAX_PROMPT_CHARS, description="What to change, in plain language."),
]
Model = Annotated[
    EditModelName, Field(description="The editing model; see the tool description for prices and limits.")
]
Ratio = Annotated[AspectRatio, Field(description="Output aspect ratio; 'original' keeps the first image's.")]

CheckEdit = Callable[[str, list[str], str, str, Context[AppContext, Any]], Awaitable[edits.EditPlan]]
ConfirmEdit = Callable[..., Awaitable["Elicit[SpendConfirmation] | SpendConfirmation"]]
Pay = Callable[
    [Context[AppContext, Any], edits.EditPlan, ElicitationResult[SpendConfirmation]], Awaitable[CallToolResult]
]


def register(
    server: MCPServer[AppContext],
    settings: Settings,
    principal: Callable[[], str],
    confirm_seconds: float = spend.CONFIRM_SECONDS,
) -> None:
    """edit_image, asking before it spends or not, as CUTOUT_CONFIRM_SPEND says."""

    # edit_image's resolvers; they stay here, where the SDK's key for a spend question (the resolver's
    # qualified name) has always named them
    async def check_edit(
        prompt: str, image_urls: list[str], model: str, aspect_ratio: str, ctx: Context[AppContext, Any]
    ) -> edits.EditPlan:
        return await edits.plan_edit(
            app_of(ctx), principal(), prompt, image_urls, model, aspect_ratio, session=current_session(ctx)
        )

    async def confirm_edit(
        plan: Annotated[edits.EditPlan, Resolve(check_edit)], ctx: Context[AppContext, Any]
    ) -> Elicit[SpendConfirmation] | SpendConfirmation:
        return await spend.ask(plan, ctx, confirm_seconds)

    pay = _payer(settings, principal)
    if settings.confirm_spend_above is None:
        _register_edit_image_unasked(server, settings, check_edit, pay)
    else:
        _register_edit_image_confirmed(server, settings, check_edit, confirm_edit, pay)


def _register_edit_image_unasked(
    server: MCPServer[AppContext], settings: Settings, check_edit: CheckEdit, pay: Pay
) -> None:
    """CUTOUT_CONFIRM_SPEND=off: nothing is ever asked, so the same checks run in the body, without the
    SDK's resolver round on every call. The input schema is the same: resolved parameters are not in it."""
    ImageUrls = Annotated[list[Annotated[str, _edit_image_url_field(settings)]], _image_urls_field()]

    @_edit_image_tool(server)
    async def edit_image(
        prompt: Prompt,
        image_urls: ImageUrls,
        ctx: Context[AppContext, Any],
        model: Model = catalog.DEFAULT_EDIT_MODEL,
        aspect_ratio: Ratio = "original",
    ) -> Annotated[CallToolResult, EditResult]:
        plan = await check_edit(prompt, image_urls, model, aspect_ratio, ctx)
        return await pay(ctx, plan, spend.NOT_ASKED)


def _register_edit_image_confirmed(
    server: MCPServer[AppContext], settings: Settings, check_edit: CheckEdit, confirm_edit: ConfirmEdit, pay: Pay
) -> None:
    ImageUrls = Annotated[list[Annotated[str, _edit_image_url_field(settings)]], _image_urls_field()]

    @_edit_image_tool(server)
    async def edit_image(
        prompt: Prompt,
        image_urls: ImageUrls,
        ctx: Context[AppContext, Any],
        plan: Annotated[edits.EditPlan, Resolve(check_edit)],
        confirmation: Annotated[ElicitationResult[SpendConfirmation], Resolve(confirm_edit)],
        model: Model = catalog.DEFAULT_EDIT_MODEL,
        aspect_ratio: Ratio = "original",
    ) -> Annotated[CallToolResult, EditResult]:
        return await pay(ctx, plan, confirmation)


def _edit_image_tool(server: MCPServer[AppContext]) -> Callable[[Callable[..., Any]], Any]:
    return server.tool(
        title="Edit images with a prompt",
        description=texts.EDIT_IMAGE,
        annotations=PAID_TOOL,
        meta=views.tool_meta("edit_image"),
    )


def _edit_image_url_field(settings: Settings) -> Any:
    """One image's constraints: an https URL (plain http only from the origins `settings` trusts), a local
    path, a `data:` URI or an `upload:` reference."""
    return Field(
        pattern=image_pattern(https_only=True, trusted_origins=settings.trusted_image_origins),
        max_length=MAX_IMAGE_ARGUMENT_CHARS,
    )


def _image_urls_field() -> Any:
    return Field(
        min_length=catalog.MIN_EDIT_IMAGES,
        max_length=catalog.MAX_EDIT_IMAGES,
        description=texts.EDIT_IMAGE_URLS,
    )


def _payer(settings: Settings, principal: Callable[[], str]) -> Pay:
    async def pay(
        ctx: Context[AppContext, Any], plan: edits.EditPlan, confirmation: ElicitationResult[SpendConfirmation]
    ) -> CallToolResult:
        consent = spend.consent_for(plan, confirmation, settings.confirm_spend_above)
        delivered = await edits.edit_image(app_of(ctx), principal(), plan, consent)
        return call_result(delivered)

    return pay
