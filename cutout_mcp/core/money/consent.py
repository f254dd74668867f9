"""Spend confirmation as a plain rule: which paid calls need the user's yes, and what they are asked.

`CUTOUT_CONFIRM_SPEND` is `off` (never ask), `always` or `above:N` (ask for calls costing more than N
credits); `Settings.confirm_spend_above` gives it as a number. The MCP layer asks (`server.spend`),
this module decides:

- A call is asked about only once everything free has passed (arguments, image pre-flight, the
  budget), so a person is never asked to approve a call that would be refused anyway.
- A call that costs nothing (an identical unfinished video job returned again) is never asked about.
- The question states the tool, model, images, prompt, credits and what the budget, the caller's
  allowance and the session cap leave. It is
  built only from the arguments and the ledger, with nothing that changes between two readings (no
  clock), because in the 2026-07-28 protocol the answer is bound to the exact wording: once a call
  is charged the credits spent change, so a replayed answer no longer fits and is asked again.
- `PaidCalls` enforces the rule at the one paid path: a call that costs more than the user agreed
  to (say, the unfinished job it was going to reuse finished meanwhile) is refused, not sent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cutout_mcp.config import Settings
from cutout_mcp.core.results import AllowanceShare, CreditSummary
from cutout_mcp.core.storage import BudgetExceededError, Storage
from cutout_mcp.core.storage.limits import CallLimits, Recent, check_limits
from cutout_mcp.errors import CutoutMcpError

SETTING = "CUTOUT_CONFIRM_SPEND"
QUOTED_PROMPT_CHARS = 400
QUOTED_URL_CHARS = 120
"""Long prompts and URLs are shortened in the question (the middle of a URL goes) so it stays readable."""


@dataclass(frozen=True)
class Spend:
    """What a paid call is about to buy, in the words the user is asked in."""

    tool: str
    model: str
    images: tuple[str, ...]
    prompt: str | None
    credits: int
    """0 when the call will return an existing unfinished job instead of paying."""


@dataclass(frozen=True)
class Consent:
    """Credits this one call may spend: what the user agreed to, or what the rule lets through unasked."""

    credits: int


class SpendNotConfirmedError(CutoutMcpError):
    """The user did not confirm a paid call (or could not be asked), so nothing was sent or charged."""

    def __init__(self, reason: str, above: int | None) -> None:
        super().__init__(
            f"Nothing was sent to cutout.pro or charged: {reason} This server asks before spending credits "
            f"({SETTING}={rule_name(above)}). Do not call the tool again unless the user asks for it. "
            f"To stop being asked, set {SETTING}=off in the server's environment, or {SETTING}=above:N to ask "
            "only about calls costing more than N credits."
        )


def rule_name(above: int | None) -> str:
    """The setting's value for the rule `above`, as a person would write it."""
    return "off" if above is None else "always" if above == 0 else f"above:{above}"


def needs_confirmation(above: int | None, credits: int) -> bool:
    """Does a call costing `credits` need the user's yes under the rule `above` (None: never)?"""
    return above is not None and credits > above


def check_consent(above: int | None, credits: int, consent: Consent | None) -> None:
    """Refuse a spend the rule `above` says must be confirmed and that `consent` does not cover."""
    if not needs_confirmation(above, credits):
        return
    if consent is None or credits > consent.credits:
        agreed = "nothing" if consent is None or consent.credits == 0 else f"{consent.credits} credits"
        raise SpendNotConfirmedError(
            f"this call would now cost {credits} credits, but the user agreed to {agreed} "
            "(an unfinished identical job it was going to reuse may have just finished). "
            "Call the tool again to be asked.",
            above,
        )


async def question_for(
    ledger: Storage, settings: Settings, principal: str, spend: Spend, limits: CallLimits | None = None
) -> str | None:
    """The question to put to the user before `spend`, or None when the rule does not ask.

    A call the budget or the caller's allowance or session cap (`limits`) cannot cover is refused here,
    before anyone is asked about it (the rate is checked when the call is sent).
    """
    above = settings.confirm_spend_above
    if not needs_confirmation(above, spend.credits):
        return None
    credits = await ledger.credits(principal, settings.credit_budget, limits)
    if credits.budget is not None and credits.remaining is not None and spend.credits > credits.remaining:
        raise BudgetExceededError(spend.credits, credits.spent_total, credits.budget)
    share = credits.allowance
    if limits is not None and share is not None:
        used, session_used = share.used or 0, share.session_used or 0
        check_limits(replace(limits, calls_per_minute=None), spend.credits, 0.0, used, session_used, Recent())
    return question(spend, credits, rule_name(above))


def question(spend: Spend, credits: CreditSummary, rule: str) -> str:
    """The text of the question: what is bought, for how much, and what the budget leaves."""
    lines = [f"Allow {spend.tool} to spend {spend.credits} cutout.pro credits?", f"Model: {spend.model}"]
    label = "Image" if len(spend.images) == 1 else f"Images ({len(spend.images)})"
    lines.append(f"{label}: " + ", ".join(_shorten_url(url) for url in spend.images))
    lines.append(f"Prompt: {_quote(spend.prompt)}" if spend.prompt else "Prompt: (none)")
    if credits.budget is not None and credits.remaining is not None:
        left = credits.remaining - spend.credits
        lines.append(f"Budget: {left} of {credits.budget} credits left after this call ({credits.spent_total} spent).")
    else:
        lines.append(f"No credit budget is set; {credits.spent_total} credits spent through this server so far.")
    lines += _allowance_lines(spend, credits.allowance)
    lines.append(f"(Asked because {SETTING}={rule}.)")
    return "\n".join(lines)


def _allowance_lines(spend: Spend, share: AllowanceShare | None) -> list[str]:
    """What the caller's own allowance and session cap leave after this call."""
    if share is None:
        return []
    lines = []
    if share.credits is not None and share.left is not None:
        lines.append(
            f"Your allowance: {share.left - spend.credits} of {share.credits} credits left this {share.period} "
            f"after this call (renews {share.renews_at})."
        )
    if share.session_credits is not None and share.session_left is not None:
        lines.append(
            f"This session: {share.session_left - spend.credits} of {share.session_credits} credits left "
            "after this call."
        )
    return lines


def _quote(prompt: str) -> str:
    text = " ".join(prompt.split())
    if len(text) > QUOTED_PROMPT_CHARS:
        text = text[: QUOTED_PROMPT_CHARS - 1] + "…"
    return f"“{text}”"


def _shorten_url(url: str) -> str:
    if len(url) <= QUOTED_URL_CHARS:
        return url
    half = (QUOTED_URL_CHARS - 1) // 2
    return f"{url[:half]}…{url[-half:]}"
