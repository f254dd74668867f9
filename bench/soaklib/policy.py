"""The limits a soak runs under: the whole server's budget and each principal's allowance, written as the
`CUTOUT_ALLOWANCES_FILE` an operator would write, so every limit is met during the run:

- alice: a calendar month's allowance that runs out early in the run (a month never renews during one);
- bob: an allowance per 90 s, a duration period whose windows are aligned to the epoch, so it runs out
  and renews every minute and a half (different from the rate's 60 s on purpose);
- carol: a per-day allowance she does not reach, 6 paid calls per minute, and a session cap. One of her
  clients speaks the 2025-11-25 protocol, whose sessions live as long as the connection (it reconnects
  every few calls); over 2026-07-28 each request stands alone, so there the cap limits one call.

The budget is set below what the allowances together let through, so it runs out mid-run as well.
"""

from __future__ import annotations

BUDGET_PER_MINUTE = 120
"""Without allowances: about half of what the clients would spend unbounded."""
BUDGET_PER_MINUTE_WITH_ALLOWANCES = 60
"""With them: alice's, bob's and carol's limits together would let through about 75 a minute."""
ALICE_PER_MINUTE = 20
BOB_CREDITS, BOB_PERIOD = 40, "90s"
CAROL_CALLS_PER_MINUTE = 6
CAROL_SESSION_CREDITS = 13
"""Two videos and no third paid call; a video and two edits."""
LEGACY_CLIENTS = frozenset({"carol1"})
"""Clients that speak the 2025-11-25 protocol (one session per connection), sticky to one replica."""


def budget_for(minutes: float, allowances: bool) -> int:
    per_minute = BUDGET_PER_MINUTE_WITH_ALLOWANCES if allowances else BUDGET_PER_MINUTE
    return int(per_minute * minutes)


def allowances_toml(minutes: float, budget: int) -> str:
    """The policy file's text; it is kept in the history, so a run can be checked again without it."""
    return f"""\
# cutout-mcp allowances for a soak of {minutes:g} minutes (budget {budget} credits)
[default]            # a caller without a table of their own: none in the soak
credits = {budget}
period = "month"

[principals.alice]   # runs out early; a month never renews during a run
credits = {int(ALICE_PER_MINUTE * minutes)}
period = "month"

[principals.bob]     # runs out and renews every 90 s (windows aligned to the epoch)
credits = {BOB_CREDITS}
period = "{BOB_PERIOD}"

[principals.carol]   # the rate and the session cap are what stop her
credits = {budget}
period = "1d"
paid_calls_per_minute = {CAROL_CALLS_PER_MINUTE}
session_credits = {CAROL_SESSION_CREDITS}
"""
