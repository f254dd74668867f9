"""The PostgreSQL statements that reserve and release a charge, each counter included, in one statement.

A reservation is one statement of data-modifying CTEs (plus, only when a rate is set, the caller's
advisory lock before it): the caller's allowance counters, the session's counter, the budget's `spend`
row and the charge itself. Each counter is an `UPDATE` or an `INSERT ... ON CONFLICT DO UPDATE` that
returns the row's new value; the row stays locked until the transaction ends, so checking that value in
Python and rolling back on a refusal is as exact across replicas as a check in the `WHERE` clause, and
gives the refusal its numbers without a second read. The budget's update waits for the counters (its
`WHERE` reads them), so every transaction locks a caller's counters before the shared `spend` row, and a
release takes them in the same order.

A window's counter row that is missing is made, filled from the charges already in it, inside the same
statement; a replica making it at the same moment makes the other's `INSERT` add to the row instead
(`ON CONFLICT`), whose sum did not count either new charge, so neither is lost.

The rate reads at most `calls_per_minute` of the caller's newest charges; that read is only exact once
the previous reservation of the same caller has committed, hence the advisory lock, taken by a statement
of its own so the reading statement's snapshot is taken after it. `BEGIN`, the lock and the statement
travel in one pipeline (`PostgresDb._pipelined_transaction`), so the lock costs no round trip.
"""

from __future__ import annotations

import functools
from typing import Any

from cutout_mcp.core.storage.limits import RATE_SECONDS, CallLimits

CALLER_LOCK_SPACE = 0x6375_7474
"""The first key of the per-caller advisory locks (two int4 keys, a space apart from the schema lock's one
bigint key)."""

CALLER_LOCK = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"

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
    ctes = [_BUMP.format(besides=f" AND NOT ({_WINDOW})" if capped else "")]
    counters = ["bumped"]
    if capped:
        ctes.append(_CURRENT)
        counters.append("allowance")
    if counted_session:
        ctes.append(_SESSION)
        counters.append("session_count")
    if rate:
        ctes.append(_RECENT)
    waits = " AND ".join(f"(SELECT COUNT(*) FROM {name}) >= 0" for name in counters)  # noqa: S608 - constant names
    ctes.append(f"budget AS (UPDATE spend SET spent = spent + %(price)s WHERE id = 1 AND {waits} RETURNING spent)")  # noqa: S608
    ctes.append(_CHARGE)
    columns = ["charge.seq AS seq", "budget.spent AS spent"]
    if capped:
        columns.append("(SELECT used FROM allowance) AS used")
    if counted_session:
        columns.append("(SELECT used FROM session_count) AS session_used")
    if rate:
        columns.append("(SELECT COUNT(*) FROM recent) AS recent_count, (SELECT MIN(created_at) FROM recent) AS oldest")
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
    "RETURNING 1) UPDATE spend SET spent = spent - gone.credits FROM gone WHERE spend.id = 1 "
    "AND (SELECT COUNT(*) FROM counters) >= 0"
)
"""Delete a charge and take it out of the budget, every window of its caller holding its time (one that
turned over since keeps its own row), and its session's counter: one statement, counters before `spend`."""

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


def before(row: Any, column: str, price: int) -> int:
    """A counter's value before this charge, from the reserving statement's row (0 when not counted)."""
    return 0 if column not in row or row[column] is None else int(row[column]) - price
