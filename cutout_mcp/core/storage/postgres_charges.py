"""The PostgreSQL statements that reserve and release a charge, each counter included, in one statement.

A reservation is one statement of data-modifying CTEs: the caller's turn (only when a rate is set), the
caller's allowance counters, the session's counter, the budget's `spend` row and the charge itself.
Each counter is an `UPDATE` or an `INSERT ... ON CONFLICT DO UPDATE` that returns the row's new value;
the row stays locked until the transaction ends, so checking that value in Python and rolling back on a
refusal is as exact across replicas as a check in the `WHERE` clause, and gives the refusal its numbers
without a second read. The budget's update waits for the counters (its `WHERE` reads them, one after
the other), so every transaction locks a caller's rows in one order (the turn, the windows, the
session) and all of them before the shared `spend` row; a release takes them in
the same order. (Two windows of one caller holding the same time, which only a change of period in the
policy makes, are locked in an order of their own, and could deadlock with a release; PostgreSQL then
fails one of the two after a second.)

A window's counter row that is missing is made, filled from the charges already in it, inside the same
statement; a replica making it at the same moment makes the other's `INSERT` add to the row instead
(`ON CONFLICT`), whose sum did not count either new charge, so neither is lost.

The rate reads at most `calls_per_minute` of the caller's newest charges in the same statement, from its
snapshot; that read is exact only if no other reservation or release of the caller committed since. Each
of them moves the caller's turn counter (a `caller_use` row), and the statement both moves it (locking it
to the end of the transaction) and reads it from its snapshot: one more than the snapshot's value means
nothing came between, and the read stands. Otherwise the reservation is rolled back and made again after
locking the turn first (`TAKE_TURN`, a statement of its own, so the second snapshot follows the lock).
So a reservation is `BEGIN`, one statement and `COMMIT`, with limits or without.
"""

from __future__ import annotations

import functools
from typing import Any

from cutout_mcp.core.storage.limits import RATE_SECONDS, CallLimits

TURN = "'*rate', 'Infinity', '-Infinity'"
"""The key (scope, window end, window start) of a caller's turn counter in `caller_use`: not credits, but how
many times a reservation or release changed the caller's calls of the last minute."""

TAKE_TURN = (
    "INSERT INTO caller_use (caller, scope, window_end, window_start, used) "  # noqa: S608 - constant key
    f"VALUES (%s, {TURN}, 0) ON CONFLICT (caller, scope, window_end, window_start) DO UPDATE SET used = caller_use.used"
)
"""Lock the caller's turn counter (made when missing) without moving it: the statements after it then read
every reservation and release of the caller committed before, and none can commit until this one does."""

_WINDOW = "window_end = %(end)s AND window_start = %(start)s"
_BUMP = (
    "bumped AS (UPDATE caller_use SET used = used + %(price)s WHERE caller = %(caller)s AND scope = '' "
    "AND window_end > %(now)s AND window_start <= %(now)s{besides} RETURNING used)"
)
_CURRENT = (
    "allowance AS (INSERT INTO caller_use (caller, scope, window_end, window_start, used) "
    "SELECT %(caller)s, '', %(end)s, %(start)s, %(price)s + CASE WHEN EXISTS (SELECT 1 FROM caller_use WHERE "
    "caller = %(caller)s AND scope = '' AND window_end = %(end)s AND window_start = %(start)s) THEN 0 "
    "ELSE (SELECT COALESCE(SUM(credits), 0) FROM charges WHERE caller = %(caller)s "
    "AND created_at >= %(start)s AND created_at < %(end)s) END "
    "ON CONFLICT (caller, scope, window_end, window_start) DO UPDATE SET used = caller_use.used + %(price)s "
    "RETURNING used)"
)
_SESSION = (
    "session_count AS (INSERT INTO caller_use (caller, scope, window_end, window_start, used) VALUES (%(caller)s, "
    "%(session)s, 'Infinity', '-Infinity', %(price)s) ON CONFLICT (caller, scope, window_end, window_start) "
    "DO UPDATE SET used = caller_use.used + EXCLUDED.used RETURNING used)"
)
_RECENT = (
    "recent AS (SELECT created_at FROM charges WHERE caller = %(caller)s AND created_at > %(since)s "
    "ORDER BY created_at DESC LIMIT %(per_minute)s)"
)
_TURN = (
    "turn AS (INSERT INTO caller_use (caller, scope, window_end, window_start, used) "  # noqa: S608 - constant key
    f"VALUES (%(caller)s, {TURN}, 1) ON CONFLICT (caller, scope, window_end, window_start) "
    "DO UPDATE SET used = caller_use.used + 1 RETURNING used)"
)
_SEEN_TURN = (
    "(SELECT used FROM caller_use WHERE caller = %(caller)s AND (scope, window_end, window_start) = "  # noqa: S608
    f"({TURN})) AS seen_turn"
)
_CHARGE = (
    "charge AS (INSERT INTO charges (principal, caller, kind, credits, created_at, dedupe_key, session_id, detail) "
    "SELECT %(principal)s, %(caller)s, %(kind)s, %(price)s, %(now)s, %(dedupe)s, %(session)s, %(detail)s "
    "FROM budget RETURNING seq)"
)


def reserve_statement(limits: CallLimits, capped: bool, rate: bool) -> str:
    """The reserving statement for these limits: `capped` counts the allowance's current window, `rate`
    reads the recent calls. It returns `seq`, `spent` (the budget's new total) and, when counted,
    `used` and `session_used` (new values, this charge included), `recent_count` and `oldest` (the caller's
    calls in the last minute, up to the limit, and when the oldest of them started)."""
    return _statement(capped, limits.session is not None and limits.any, rate)


@functools.cache
def _statement(capped: bool, counted_session: bool, rate: bool) -> str:
    """The statement's text, one of eight, made once each."""
    ctes = [_RECENT, _TURN] if rate else []
    counters = ["turn"] if rate else []
    ctes.append(_BUMP.format(besides=f" AND NOT ({_WINDOW})" if capped else ""))
    counters.append("bumped")
    if capped:
        ctes.append(_CURRENT)
        counters.append("allowance")
    if counted_session:
        ctes.append(_SESSION)
        counters.append("session_count")
    # one sub-select reading the counters' CTEs in this order: each runs to the end before the next starts,
    # so every transaction locks a caller's rows in the same order, and all of them before `spend`
    gate = " UNION ALL ".join(f"SELECT 1 FROM {name}" for name in counters)  # noqa: S608 - constant names
    ctes.append(
        "budget AS (UPDATE spend SET spent = spent + %(price)s WHERE id = 1 "  # noqa: S608 - constant names
        f"AND (SELECT COUNT(*) FROM ({gate}) AS counted) >= 0 RETURNING spent)"
    )
    ctes.append(_CHARGE)
    columns = ["charge.seq AS seq", "budget.spent AS spent"]
    if capped:
        columns.append("(SELECT used FROM allowance) AS used")
    if counted_session:
        columns.append("(SELECT used FROM session_count) AS session_used")
    if rate:
        columns += [
            "(SELECT COUNT(*) FROM recent) AS recent_count, (SELECT MIN(created_at) FROM recent) AS oldest",
            "(SELECT used FROM turn) AS turn",
            _SEEN_TURN,
        ]
    return f"WITH {', '.join(ctes)} SELECT {', '.join(columns)} FROM charge, budget"  # noqa: S608 - constant parts


def reserve_params(
    charge: tuple[str, str, str, int, float, str | None, str | None], limits: CallLimits | None
) -> dict[str, Any]:
    """The statement's parameters; `charge` is (principal, caller, kind, price, now, dedupe key, detail)."""
    principal, caller, kind, price, now, dedupe, detail = charge
    per_minute = None if limits is None else limits.calls_per_minute
    return {
        "principal": principal,
        "caller": caller,
        "kind": kind,
        "price": price,
        "now": now,
        "dedupe": dedupe,
        "session": limits.session if limits is not None and limits.any else None,
        "start": None if limits is None else limits.window_start,
        "end": None if limits is None else limits.renews_at,
        "since": now - RATE_SECONDS,
        "per_minute": per_minute,
        "detail": detail,
    }


RELEASE = (
    "WITH gone AS (DELETE FROM charges WHERE seq = %s RETURNING credits, caller, created_at, session_id), "
    "counters AS (UPDATE caller_use c SET used = c.used - gone.credits FROM gone WHERE c.caller = gone.caller "
    "AND c.scope IN ('', gone.session_id) AND c.window_end > gone.created_at AND c.window_start <= gone.created_at "
    "RETURNING 1), turns AS (UPDATE caller_use t SET used = t.used + 1 FROM gone WHERE t.caller = gone.caller "
    "AND (t.scope, t.window_end, t.window_start) = ('*rate', 'Infinity', '-Infinity') RETURNING 1) "
    "UPDATE spend SET spent = spent - gone.credits FROM gone WHERE spend.id = 1 "
    "AND (SELECT COUNT(*) FROM (SELECT 1 FROM turns UNION ALL SELECT 1 FROM counters) AS counted) >= 0"
)
"""Delete a charge and take it out of the budget, every window of its caller holding its time (one that
turned over since keeps its own row), and its session's counter, and move the caller's turn: one statement,
counters before `spend`."""

USAGE = (
    "SELECT COALESCE((SELECT used FROM caller_use WHERE caller = %(caller)s AND scope = '' AND window_end = %(end)s "
    "AND window_start = %(start)s), (SELECT COALESCE(SUM(credits), 0) FROM charges WHERE %(credits)s::bigint "
    "IS NOT NULL AND caller = %(caller)s AND created_at >= %(start)s AND created_at < %(end)s)) AS used, "
    "COALESCE((SELECT used FROM caller_use WHERE caller = %(caller)s AND scope = %(session)s::text "
    "AND window_end = 'Infinity' AND window_start = '-Infinity'), 0) AS session_used"
)
"""The caller's share as `Storage.credits` shows it: the counters, or the charges' sums where a counter has
not been made yet (nothing is written)."""


def usage_params(limits: CallLimits) -> dict[str, Any]:
    return {
        "caller": limits.name,
        "start": limits.window_start,
        "end": limits.renews_at,
        "credits": limits.credits,
        "session": limits.session,
    }


def overtaken(row: Any) -> bool:
    """Whether another reservation or release of the caller committed between the reserving statement's
    snapshot and its lock on the caller's turn, so the recent calls it read may be stale."""
    return "turn" in row and int(row["turn"]) != int(row["seen_turn"] or 0) + 1


def before(row: Any, column: str, price: int) -> int:
    """A counter's value before this charge, from the reserving statement's row (0 when not counted)."""
    return 0 if column not in row or row[column] is None else int(row[column]) - price
