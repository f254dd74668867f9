"""Asking the user before a paid call: the MCP half of `core.money.consent`.

A paid tool declares two resolved parameters (`mcp.server.mcpserver.Resolve`), which the model can
neither see in the input schema nor supply (extra arguments are dropped, resolved values win):

    plan: Annotated[EditPlan, Resolve(plan)]                  every free check, and the question if any
    confirmation: Annotated[ElicitationResult[SpendConfirmation], Resolve(confirm)]

and its body turns the two into a `Consent` with `consent_for` before paying. The question is asked
through MCP elicitation in the client's protocol era:

- 2026-07-28: the SDK answers the first `tools/call` with `input_required` (an `elicitation/create`
  request and a sealed `requestState`); the client asks the user and calls again with the answer.
  The server holds nothing while the user thinks; an answer later than `CONFIRM_SECONDS` is refused
  by the SDK as an expired state, and nothing is charged.
- 2025-11-25: `elicitation/create` is sent during the call, and its wait is bounded here by
  `CONFIRM_SECONDS` (the SDK's own path would wait without limit).

A client that did not declare form elicitation is refused up front with a tool error naming
`CUTOUT_CONFIRM_SPEND`, rather than the SDK's JSON-RPC -32021 that hosts tend to show as a bare failure.
"""

from __future__ import annotations

from typing import Any, Protocol

import anyio
from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult
from mcp.shared.exceptions import MCPError
from mcp_types import ClientCapabilities
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from cutout_mcp.core.context import AppContext
from cutout_mcp.core.money.consent import Consent, Spend, SpendNotConfirmedError

CONFIRM_SECONDS = 300.0
"""How long a spend question stays open: the 2025-11-25 wait, and the 2026-07-28 answer's lifetime."""


class SpendConfirmation(BaseModel):
    # No docstring: pydantic would send it as the form's description, under the question itself.
    model_config = ConfigDict(title="Confirm a paid cutout.pro call")

    confirm: StrictBool = Field(
        title="Spend the credits?",
        description="Tick to let this call spend the credits shown. Leave it unticked or decline to spend nothing.",
    )


ALLOWED = SpendConfirmation(confirm=True)
"""What `confirm` resolves to when the rule does not ask about a call."""

NOT_ASKED: ElicitationResult[SpendConfirmation] = AcceptedElicitation(data=ALLOWED)
"""The confirmation a tool registered without resolvers pays with (`CUTOUT_CONFIRM_SPEND=off`)."""


class Planned(Protocol):
    """What `core` plans carry for the question: `VideoPlan`, `EditPlan`."""

    @property
    def spend(self) -> Spend: ...

    @property
    def question(self) -> str | None: ...


async def ask(
    plan: Planned, ctx: Context[AppContext, Any], seconds: float
) -> Elicit[SpendConfirmation] | SpendConfirmation:
    """The resolver's work: no question, a refusal for a client that cannot ask, or the question."""
    if plan.question is None:
        return ALLOWED
    above = ctx.request_context.lifespan_context.settings.confirm_spend_above
    if not can_ask(ctx.client_capabilities):
        raise SpendNotConfirmedError(
            f"{plan.spend.tool} costs {plan.spend.credits} credits, and this client cannot show the confirmation "
            "question (it does not support MCP form elicitation).",
            above,
        )
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return Elicit(plan.question, SpendConfirmation)
    # 2025-11-25: ask during the call ourselves, so that the wait has a bound.
    try:
        with anyio.fail_after(seconds):
            outcome = await ctx.elicit(plan.question, SpendConfirmation)
    except TimeoutError:
        raise SpendNotConfirmedError(f"no answer to the confirmation question within {seconds:g} s.", above) from None
    except ValidationError:
        raise SpendNotConfirmedError("the client's answer to the confirmation question was malformed.", above) from None
    except ValueError as exc:  # accepted without content, or content off the form
        raise SpendNotConfirmedError(f"the client's answer could not be read ({exc}).", above) from None
    except MCPError as exc:
        raise SpendNotConfirmedError(f"the client could not ask the question ({exc.error.message}).", above) from None
    if isinstance(outcome, AcceptedElicitation):
        return outcome.data
    raise SpendNotConfirmedError(_not_confirmed(outcome.action), above)


def consent_for(plan: Planned, confirmation: ElicitationResult[SpendConfirmation], above: int | None) -> Consent:
    """The consent a tool body pays with; raises when the user said anything but yes."""
    if not isinstance(confirmation, AcceptedElicitation):
        raise SpendNotConfirmedError(_not_confirmed(confirmation.action), above)
    if not confirmation.data.confirm:
        raise SpendNotConfirmedError("the user left “Spend the credits?” unticked.", above)
    return Consent(plan.spend.credits)


def can_ask(capabilities: ClientCapabilities | None) -> bool:
    """Did the client declare form elicitation? (A bare `elicitation: {}` means form; URL-only does not.)"""
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _not_confirmed(action: str) -> str:
    return "the user declined the spend." if action == "decline" else "the confirmation question was dismissed."
