"""A caller's limits as `Storage.reserve` checks them, the refusal when one would be passed, and the
caller's share as `Storage.credits` shows it.

The backends count each charge into constant-cost counters in the reserving transaction, like the budget's
`spend` row, and hand the numbers to `check_limits`, so the rule is written once and holds on both:

- `caller_use`, per caller (by name, so an OAuth subject using two clients is one caller): one row per
  allowance window, holding the credits of the caller's charges made within it, made the first time its
  window is asked for, filled from the charges already in it (`SUM`, once), so it is exact whatever
  policy was in force before; from then on every charge of the caller made within the window adds to
  it and every release subtracts from it, whether or not an allowance was set at the time; and one row
  per MCP session (a window without end, `SESSION_WINDOW`), moved by each charge stored with that
  session (a charge is stored with its session when the caller has any limit);
- the rate reads at most `calls_per_minute` of the caller's newest charges through an index.

Released reservations are deleted, so they count for nothing, the rate included; a reservation whose
outcome is unknown stays, so it counts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Literal, NamedTuple

from cutout_mcp.clock import iso_utc
from cutout_mcp.config.allowances import AllowancePolicy, principal_name
from cutout_mcp.config.periods import Period
from cutout_mcp.core.results import AllowanceShare
from cutout_mcp.errors import CutoutMcpError

LimitName = Literal["allowance", "session", "rate"]
RATE_SECONDS = 60.0
SESSION_WINDOW = (float("-inf"), float("inf"))
"""The window of a session's counter (start, end): it holds every time, so one range finds it with the
caller's current windows."""
NOTHING_SENT = "Nothing was sent to cutout.pro or charged."


@dataclass(frozen=True)
class CallLimits:
    """What one paid call must fit besides the budget: the caller's allowance in its current window, the
    session's cap and the rate of paid calls. None is no limit."""

    name: str
    """The caller as people know them (a token's name, an OAuth subject, `local`): what the allowance, the
    rate and the messages count and name, whichever client the caller uses."""
    session: str | None = None
    """The MCP session's key, stored with the charge (`session_key`)."""
    credits: int | None = None
    period: str = "month"
    window_start: float = 0.0
    renews_at: float = 0.0
    session_credits: int | None = None
    calls_per_minute: int | None = None
    rule: Period | None = None
    """The allowance's period, so the storage can take the window holding the charge's own time."""

    @property
    def any(self) -> bool:
        return (self.credits, self.session_credits, self.calls_per_minute) != (None, None, None)

    def at(self, now: float) -> CallLimits:
        """These limits with the window holding `now` (the time the charge is stamped with), so a charge
        is always counted in the window its time falls in, even when the window turned over since."""
        if self.rule is None or self.window_start <= now < self.renews_at:
            return self
        start, renews = self.rule.window(now)
        return replace(self, window_start=start, renews_at=renews)


def call_limits(policy: AllowancePolicy | None, principal: str, session: str | None, now: float) -> CallLimits:
    """The limits that apply to `principal` in `session` at `now` (none when there is no policy)."""
    if policy is None:
        return CallLimits(principal_name(principal), session)
    name, limits = policy.for_principal(principal)
    start, renews = limits.period.window(now)
    return CallLimits(
        name,
        session,
        limits.credits,
        limits.period.text,
        start,
        renews,
        limits.session_credits,
        limits.paid_calls_per_minute,
        limits.period,
    )


def session_key(session_id: str) -> str:
    """What the ledger stores for a transport's session id: a digest, so the id itself is never kept."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]


class AllowanceExceededError(CutoutMcpError):
    """A paid call would pass the caller's allowance, the session's cap or the rate; nothing was sent.

    `limit` says which ("allowance", "session" or "rate"), so refusals can be counted by reason."""

    def __init__(self, limit: LimitName, message: str) -> None:
        super().__init__(message)
        self.limit = limit


class Used(NamedTuple):
    """What the caller's current window and session held before this charge (0 where nothing is counted)."""

    window: int
    session: int


@dataclass(frozen=True)
class Recent:
    """The caller's paid calls started in the last minute, counted up to `calls_per_minute` (newest first)."""

    count: int = 0
    oldest: float | None = None
    """When the oldest of those counted started, once `count` reached the limit (the wait is from it)."""


def check_limits(limits: CallLimits, price: int, now: float, used: int, session_used: int, recent: Recent) -> None:
    """Raise AllowanceExceededError when this call (costing `price`) passes a limit.

    `used` is what the caller's charges in the current window add up to, `session_used` the session's,
    and `recent` the caller's paid calls in the last minute."""
    if limits.credits is not None and used + price > limits.credits:
        raise AllowanceExceededError(
            "allowance",
            f"Refused before contacting cutout.pro: this call costs {price} credits, but {limits.name}'s allowance "
            f"of {limits.credits} credits per {limits.period} has {max(0, limits.credits - used)} left ({used} used "
            f"this period). It renews at {iso_utc(limits.renews_at)}. {NOTHING_SENT}",
        )
    if limits.session_credits is not None and session_used + price > limits.session_credits:
        raise AllowanceExceededError(
            "session",
            f"Refused before contacting cutout.pro: this call costs {price} credits, but the session cap of "
            f"{limits.session_credits} credits has {max(0, limits.session_credits - session_used)} left "
            f"({session_used} used in this session). It renews only with a new session (a new client connection). "
            f"{NOTHING_SENT}",
        )
    per_minute = limits.calls_per_minute
    if per_minute is not None and recent.count >= per_minute:
        if per_minute == 0 or recent.oldest is None:
            wait = "No paid call is allowed at all (paid_calls_per_minute = 0)."
        else:
            seconds = max(1, int(recent.oldest + RATE_SECONDS - now + 0.999))
            wait = f"The next paid call is allowed in {seconds} s."
        raise AllowanceExceededError(
            "rate",
            f"Refused before contacting cutout.pro: {limits.name} may start {per_minute} paid calls per minute and "
            f"has started that many in the last 60 s (this call costs {price} credits). {wait} {NOTHING_SENT}",
        )


def allowance_share(limits: CallLimits, used: int, session_used: int) -> AllowanceShare | None:
    """The caller's own share, as `cutout://credits` and `list_video_jobs` show it."""
    if not limits.any:
        return None
    return AllowanceShare(
        name=limits.name,
        credits=limits.credits,
        period=limits.period if limits.credits is not None else None,
        used=used if limits.credits is not None else None,
        left=None if limits.credits is None else max(0, limits.credits - used),
        renews_at=iso_utc(limits.renews_at) if limits.credits is not None else None,
        session_credits=limits.session_credits,
        session_used=None if limits.session_credits is None or limits.session is None else session_used,
        session_left=(
            None
            if limits.session_credits is None or limits.session is None
            else max(0, limits.session_credits - session_used)
        ),
        paid_calls_per_minute=limits.calls_per_minute,
    )
