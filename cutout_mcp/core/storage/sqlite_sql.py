"""The ledger's SQL for SQLite, as plain functions of a connection (run inline or in the worker thread)."""

from __future__ import annotations

import sqlite3
from typing import Any

from cutout_mcp.config.allowances import principal_name
from cutout_mcp.core.results import CreditSummary, VideoJob
from cutout_mcp.core.storage.base import (
    BudgetExceededError,
    ChargeKind,
    Claim,
    Guard,
    GuardLostError,
    Unrecorded,
    credit_summary,
)
from cutout_mcp.core.storage.limits import (
    RATE_SECONDS,
    SESSION_WINDOW,
    CallLimits,
    Recent,
    Used,
    allowance_share,
    check_limits,
)
from cutout_mcp.core.storage.sqlite_db import Db, immediate


def execute(db: Db, sql: str, params: tuple[Any, ...]) -> int:
    return db.execute(sql, params).rowcount


def one(db: Db, sql: str, params: tuple[Any, ...]) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute(sql, params).fetchone()
    return row


def all_rows(db: Db, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
    return db.execute(sql, params).fetchall()


def reserve(
    db: Db,
    principal: str,
    kind: ChargeKind,
    credits: int,
    budget: int | None,
    guard: Guard | None,
    now: float,
    limits: CallLimits | None,
    detail: str | None = None,
) -> int:
    caller = principal_name(principal) if limits is None else limits.name
    session = limits.session if limits is not None and limits.any else None  # counted only under a policy
    with immediate(db):  # one write transaction: every process's reservations are serialised
        if guard is not None and _guard_holder(db, guard.key) != guard.holder:
            raise GuardLostError(
                "Another server process took over this request's duplicate check while it was waiting; "
                "nothing was sent to cutout.pro or charged. Call generate_video again."
            )
        used, session_used = _count(db, caller, session, credits, now, limits)
        per_minute = None if limits is None else limits.calls_per_minute
        # the budget's counter, and (read in the same statement) the caller's calls in the last minute
        spent, count = db.execute(
            "UPDATE spend SET spent = spent + ? WHERE id = 1 RETURNING spent, (SELECT COUNT(*) FROM (SELECT 1 "
            "FROM charges WHERE caller = ? AND created_at > ? ORDER BY created_at DESC LIMIT ?))",
            (credits, caller, now - RATE_SECONDS, per_minute or 0),
        ).fetchone()
        if limits is not None and limits.any:  # a refusal rolls back every counter moved above
            check_limits(limits, credits, now, used, session_used, _recent(db, caller, limits, now, int(count)))
        if budget is not None and int(spent) > budget:
            raise BudgetExceededError(credits, int(spent) - credits, budget)
        cursor = db.execute(
            "INSERT INTO charges (principal, caller, kind, credits, created_at, dedupe_key, session_id, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (principal, caller, kind, credits, now, None if guard is None else guard.key, session, detail),
        )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _count(db: Db, caller: str, session: str | None, credits: int, now: float, limits: CallLimits | None) -> Used:
    """Add the charge to every counter of the caller holding `now` (its windows, its session's); what the
    current window and the session held before it.

    A missing row is made: the current window's (filled from the charges already in it) when the allowance
    is set, once per caller and window; the session's, once per session."""
    rows = db.execute(
        "UPDATE caller_use SET used = used + ? WHERE caller = ? AND scope IN ('', ?) AND window_end > ? "
        "AND window_start <= ? RETURNING scope, window_end, window_start, used",
        (credits, caller, session, now, now),
    ).fetchall()
    used = session_used = None
    for scope, end, start, value in rows:
        if scope == "" and limits is not None and (start, end) == (limits.window_start, limits.renews_at):
            used = int(value) - credits
        elif scope != "":
            session_used = int(value) - credits
    if used is None and limits is not None and limits.credits is not None:
        made = db.execute(
            "INSERT INTO caller_use (caller, scope, window_end, window_start, used) SELECT ?, '', ?, ?, "
            "COALESCE(SUM(credits), 0) + ? FROM charges WHERE caller = ? AND created_at >= ? AND created_at < ? "
            "RETURNING used",
            (caller, limits.renews_at, limits.window_start, credits, caller, limits.window_start, limits.renews_at),
        ).fetchone()
        used = int(made[0]) - credits
    if session_used is None and session is not None:
        db.execute(
            "INSERT INTO caller_use (caller, scope, window_end, window_start, used) VALUES (?, ?, ?, ?, ?)",
            (caller, session, *SESSION_WINDOW[::-1], credits),
        )
    return Used(used or 0, session_used or 0)


def usage(db: Db, limits: CallLimits) -> Used:
    """The caller's credits in the current window and the session's (0 for a limit that is not set), read
    from the counters, or summed from the charges when the window's counter has not been made yet."""
    used = session_used = 0
    if limits.credits is not None:
        row = db.execute(
            "SELECT used FROM caller_use WHERE caller = ? AND scope = '' AND window_end = ? AND window_start = ?",
            (limits.name, limits.renews_at, limits.window_start),
        ).fetchone()
        if row is None:
            row = db.execute(
                "SELECT COALESCE(SUM(credits), 0) FROM charges WHERE caller = ? AND created_at >= ? AND created_at < ?",
                (limits.name, limits.window_start, limits.renews_at),
            ).fetchone()
        used = int(row[0])
    if limits.session is not None and limits.session_credits is not None:
        row = db.execute(
            "SELECT used FROM caller_use WHERE caller = ? AND scope = ? AND window_end = ? AND window_start = ?",
            (limits.name, limits.session, *SESSION_WINDOW[::-1]),
        ).fetchone()
        session_used = 0 if row is None else int(row[0])
    return Used(used, session_used)


def _recent(db: Db, caller: str, limits: CallLimits, now: float, count: int) -> Recent:
    """`count` of the caller's calls in the last minute, with the oldest of them once the limit is reached."""
    per_minute = limits.calls_per_minute
    if not per_minute or count < per_minute:
        return Recent(count)
    row = db.execute(
        "SELECT MIN(created_at) FROM (SELECT created_at FROM charges WHERE caller = ? AND created_at > ? "
        "ORDER BY created_at DESC LIMIT ?)",
        (caller, now - RATE_SECONDS, per_minute),
    ).fetchone()
    return Recent(count, float(row[0]))


def shared_secret(db: Db, name: str, candidate: bytes) -> bytes:
    with immediate(db):
        db.execute("INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)", (name, candidate))
        row = db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
    return bytes(row[0])


def release(db: Db, charge: int) -> None:
    """Delete the charge and take it out of every counter that holds it: the budget, the caller's windows
    holding its time (a window that turned over since keeps its own row, or has none), its session."""
    with immediate(db):
        row = db.execute(
            "DELETE FROM charges WHERE seq = ? RETURNING credits, caller, created_at, session_id", (charge,)
        ).fetchone()
        if row is None:
            return
        credits, caller, created_at, session = int(row[0]), row[1], float(row[2]), row[3]
        db.execute("UPDATE spend SET spent = spent - ? WHERE id = 1", (credits,))
        db.execute(
            "UPDATE caller_use SET used = used - ? WHERE caller = ? AND scope IN ('', ?) AND window_end > ? "
            "AND window_start <= ?",
            (credits, caller, session, created_at, created_at),
        )


def credits(db: Db, principal: str, budget: int | None, limits: CallLimits | None) -> CreditSummary:
    total = int(db.execute("SELECT spent FROM spend WHERE id = 1").fetchone()[0])
    mine = db.execute("SELECT COALESCE(SUM(credits), 0) FROM charges WHERE principal = ?", (principal,)).fetchone()
    summary = credit_summary(total, int(mine[0]), budget)
    if limits is None:
        return summary
    return summary.model_copy(update={"allowance": allowance_share(limits, *usage(db, limits))})


def record_video_job(db: Db, charge: int | None, job: tuple[Any, ...], now: float) -> None:
    """`job` is (id, principal, image_url, image_ref, staged_key, prompt, credits)."""
    with immediate(db):
        db.execute(
            "INSERT OR IGNORE INTO video_jobs (id, principal, image_url, image_ref, staged_key, prompt, status, "
            "credits, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
            (*job, now, now),
        )
        if charge is not None:
            db.execute("UPDATE charges SET ref_id = ? WHERE seq = ?", (job[0], charge))


def update_job(db: Db, job: VideoJob, now: float) -> None:
    seen = (job.status, job.percentage, job.wait_number, job.result_url, job.cover_url)
    db.execute(
        "UPDATE video_jobs SET status = ?, percentage = ?, wait_number = ?, result_url = ?, cover_url = ?, "
        "updated_at = ? WHERE id = ? AND (status IS NOT ? OR percentage IS NOT ? OR wait_number IS NOT ? "
        "OR result_url IS NOT ? OR cover_url IS NOT ?)",
        (*seen, now, job.id, *seen),
    )


def _guard_holder(db: Db, key: str) -> str | None:
    row = db.execute("SELECT holder FROM guards WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def claim_guard(db: Db, guard: Guard, lease_seconds: float, window: float, now: float) -> Claim:
    with immediate(db):
        claimed = db.execute(
            "INSERT INTO guards (key, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
            "holder = excluded.holder, expires_at = excluded.expires_at WHERE guards.expires_at <= ? RETURNING key",
            (guard.key, guard.holder, now + lease_seconds, now),
        ).fetchone()
        if claimed is None:
            held = db.execute("SELECT expires_at, holder FROM guards WHERE key = ?", (guard.key,)).fetchone()
            if held is None:
                return Claim(False)
            return Claim(False, held_until=float(held[0]), holder=str(held[1]))
        orphan = db.execute(
            "SELECT seq, created_at FROM charges WHERE dedupe_key = ? AND ref_id IS NULL AND created_at > ? "
            "ORDER BY seq DESC LIMIT 1",
            (guard.key, now - window),
        ).fetchone()
    return Claim(True, unrecorded=None if orphan is None else Unrecorded(int(orphan[0]), float(orphan[1])))


def renew_task_leases(db: Db, holder: str, task_ids: list[str], until: float) -> set[str]:
    held: set[str] = set()
    with immediate(db):
        for task_id in task_ids:
            row = db.execute(
                "UPDATE tasks SET lease_expires = ? WHERE task_id = ? AND status = 'working' AND lease_holder = ? "
                "RETURNING task_id",
                (until, task_id, holder),
            ).fetchone()
            if row is not None:
                held.add(str(row[0]))
    return held
