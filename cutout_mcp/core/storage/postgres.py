"""The PostgreSQL backend: one database shared by any number of replicas (`CUTOUT_DATABASE_URL`).

The statements are here; the connection pool they run through (psycopg 3, the `postgres` extra), opening
it and translating driver errors are in `postgres_db`.

What makes concurrent replicas safe, statement by statement (READ COMMITTED):

- the budget is one counter row, the caller's allowance and session caps counter rows of their own; a
  reservation moves them all in one statement (`postgres_charges`) and checks their new values, which
  PostgreSQL computes on the latest row version after waiting for a concurrent update and keeps locked
  until the transaction ends, so two replicas can never both pass a limit on a stale read;
- a dedupe guard is claimed with `INSERT ... ON CONFLICT DO UPDATE ... WHERE expired`, one atomic
  statement; a reservation under a guard locks the guard row (`FOR UPDATE`) so a takeover cannot
  slip between the holder's check and its charge;
- a caller's rate is read in the reserving statement, which also moves the caller's turn counter and
  checks that no other reservation or release of the caller committed since its snapshot (else it is
  made again after locking the turn), so two replicas reserving for one caller count each other's charge;
- task leases are taken over with `UPDATE ... WHERE lease_expires <= now ... RETURNING`, so exactly
  one replica adopts each orphaned task.
"""

from __future__ import annotations

from cutout_mcp.config.allowances import principal_name
from cutout_mcp.core.results import ACTIVE_STATUSES, CreditSummary, JobStatus, LedgerJob, VideoJob
from cutout_mcp.core.storage import postgres_charges as charges
from cutout_mcp.core.storage.base import (
    BudgetExceededError,
    ChargeKind,
    Claim,
    Guard,
    GuardLostError,
    Storage,
    TaskRow,
    Unrecorded,
    credit_summary,
    job_from_row,
    task_from_row,
    task_values,
)
from cutout_mcp.core.storage.limits import CallLimits, Recent, allowance_share, check_limits
from cutout_mcp.core.storage.postgres_db import PostgresDb
from cutout_mcp.core.storage.statements import STAGED_SQL, TASK_SQL, finish_values, save_values


class PostgresStorage(PostgresDb, Storage):
    """The storage in a PostgreSQL database, through an async psycopg pool (`postgres_db.PostgresDb`)."""

    backend = "postgresql"

    # --- credits -----------------------------------------------------------------

    async def reserve(
        self,
        principal: str,
        kind: ChargeKind,
        credits: int,
        budget: int | None,
        guard: Guard | None = None,
        limits: CallLimits | None = None,
        detail: str | None = None,
    ) -> int:
        now = self._clock.now()
        limits = None if limits is None else limits.at(now)
        caller = principal_name(principal) if limits is None else limits.name
        charge = (principal, caller, kind, credits, now, None if guard is None else guard.key, detail)
        try:
            return await self._reserve(charge, limits, budget, guard, first_turn=False)
        except _Overtaken:  # another reservation of the caller came between: again, in turn
            return await self._reserve(charge, limits, budget, guard, first_turn=True)

    async def _reserve(
        self,
        charge: tuple[str, str, str, int, float, str | None, str | None],
        limits: CallLimits | None,
        budget: int | None,
        guard: Guard | None,
        *,
        first_turn: bool,
    ) -> int:
        """One attempt at `reserve` (`postgres_charges` says how); `first_turn` locks the caller's turn first."""
        caller, credits, now = charge[1], charge[3], charge[4]
        rules = limits or CallLimits(caller)
        capped, rate = rules.credits is not None, bool(rules.calls_per_minute)
        async with self._transaction() as cur:
            if guard is not None:
                await cur.execute("SELECT holder FROM guards WHERE key = %s FOR UPDATE", (guard.key,))
                held = await cur.fetchone()
                if held is None or held["holder"] != guard.holder:
                    raise GuardLostError(
                        "Another server process took over this request's duplicate check while it was waiting; "
                        "nothing was sent to cutout.pro or charged. Call generate_video again."
                    )
            if rate and first_turn:
                await cur.execute(charges.TAKE_TURN, (caller,))
            await cur.execute(charges.reserve_statement(rules, capped, rate), charges.reserve_params(charge, limits))
            row = await cur.fetchone()
            # a refusal raises here, and the transaction's rollback undoes every counter the statement moved
            if rate and charges.overtaken(row):
                raise _Overtaken()
            if rules.any:
                recent = Recent(int(row["recent_count"]), row["oldest"]) if rate else Recent()
                used, session_used = charges.before(row, "used", credits), charges.before(row, "session_used", credits)
                check_limits(rules, credits, now, used, session_used, recent)
            if budget is not None and int(row["spent"]) > budget:
                raise BudgetExceededError(credits, int(row["spent"]) - credits, budget)
            return int(row["seq"])

    async def release(self, charge: int) -> None:
        await self._execute(charges.RELEASE, (charge,))

    async def record_edit(self, charge: int, edit_id: int, model: str) -> None:
        await self._execute("UPDATE charges SET ref_id = %s, detail = %s WHERE seq = %s", (edit_id, model, charge))

    async def credits(self, principal: str, budget: int | None, limits: CallLimits | None = None) -> CreditSummary:
        async with self._transaction() as cur:
            await cur.execute(
                "SELECT (SELECT spent FROM spend WHERE id = 1) AS total, "
                "(SELECT COALESCE(SUM(credits), 0) FROM charges WHERE principal = %s) AS mine",
                (principal,),
            )
            row = await cur.fetchone()
            summary = credit_summary(int(row["total"]), int(row["mine"]), budget)
            if limits is None:
                return summary
            await cur.execute(charges.USAGE, charges.usage_params(limits))
            used = await cur.fetchone()
            share = allowance_share(limits, int(used["used"]), int(used["session_used"]))
        return summary.model_copy(update={"allowance": share})

    # --- video jobs ----------------------------------------------------------------

    async def record_video_job(
        self,
        charge: int | None,
        job_id: int,
        principal: str,
        image_url: str,
        prompt: str | None,
        credits: int,
        *,
        image_ref: str | None = None,
        staged_key: str | None = None,
    ) -> None:
        now = self._clock.now()
        async with self._transaction() as cur:
            await cur.execute(
                "INSERT INTO video_jobs (id, principal, image_url, image_ref, staged_key, prompt, status, credits, "
                "created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, 'queued', %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (job_id, principal, image_url, image_ref or image_url, staged_key, prompt, credits, now, now),
            )
            if charge is not None:
                await cur.execute("UPDATE charges SET ref_id = %s WHERE seq = %s", (job_id, charge))

    async def update_job(self, job: VideoJob) -> None:
        seen = (job.status, job.percentage, job.wait_number, job.result_url, job.cover_url)
        await self._execute(
            "UPDATE video_jobs SET status = %s, percentage = %s, wait_number = %s, result_url = %s, cover_url = %s, "
            "updated_at = %s WHERE id = %s AND (status IS DISTINCT FROM %s OR percentage IS DISTINCT FROM %s "
            "OR wait_number IS DISTINCT FROM %s OR result_url IS DISTINCT FROM %s::text "
            "OR cover_url IS DISTINCT FROM %s::text)",
            (*seen, self._clock.now(), job.id, *seen),
        )

    async def owner(self, job_id: int) -> str | None:
        row = await self._one("SELECT principal FROM video_jobs WHERE id = %s", (job_id,))
        return None if row is None else str(row["principal"])

    async def get_job(self, principal: str, job_id: int) -> LedgerJob | None:
        row = await self._one("SELECT * FROM video_jobs WHERE id = %s AND principal = %s", (job_id, principal))
        return None if row is None else job_from_row(row)

    async def list_jobs(self, principal: str, status: JobStatus | None = None, limit: int = 20) -> list[LedgerJob]:
        rows = await self._all(
            "SELECT * FROM video_jobs WHERE principal = %s AND (%s::text IS NULL OR status = %s::text) "
            "ORDER BY created_at DESC, id DESC LIMIT %s",
            (principal, status, status, limit),
        )
        return [job_from_row(row) for row in rows]

    async def find_active(self, principal: str, image_ref: str, prompt: str | None) -> LedgerJob | None:
        row = await self._one(
            "SELECT * FROM video_jobs WHERE principal = %s AND image_ref = %s AND prompt IS NOT DISTINCT FROM "
            "%s::text AND status IN (%s, %s) ORDER BY created_at DESC, id DESC LIMIT 1",
            (principal, image_ref, prompt, *ACTIVE_STATUSES),
        )
        return None if row is None else job_from_row(row)

    # --- staged images ---------------------------------------------------------------

    async def staged_key_of(self, job_id: int) -> str | None:
        row = await self._one(_pg(STAGED_SQL["key_of"]), (job_id,))
        return None if row is None else row["staged_key"]

    async def staged_key_in_use(self, key: str) -> bool:
        return await self._one(_pg(STAGED_SQL["in_use"]), (key, *ACTIVE_STATUSES)) is not None

    async def forget_staged(self, key: str) -> None:
        await self._execute(_pg(STAGED_SQL["forget"]), (key, *ACTIVE_STATUSES))

    async def finished_staged_keys(self, limit: int = 100) -> list[str]:
        rows = await self._all(_pg(STAGED_SQL["finished"]), (*ACTIVE_STATUSES, limit))
        return [row["staged_key"] for row in rows]

    # --- the dedupe guard ------------------------------------------------------------

    async def claim_guard(self, guard: Guard, lease_seconds: float, unrecorded_window: float) -> Claim:
        now = self._clock.now()
        async with self._transaction() as cur:
            await cur.execute(
                "INSERT INTO guards (key, holder, expires_at) VALUES (%s, %s, %s) ON CONFLICT (key) DO UPDATE SET "
                "holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at WHERE guards.expires_at <= %s "
                "RETURNING key",
                (guard.key, guard.holder, now + lease_seconds, now),
            )
            if await cur.fetchone() is None:
                await cur.execute("SELECT expires_at, holder FROM guards WHERE key = %s", (guard.key,))
                held = await cur.fetchone()
                if held is None:
                    return Claim(False)
                return Claim(False, held_until=float(held["expires_at"]), holder=str(held["holder"]))
            await cur.execute(
                "SELECT seq, created_at FROM charges WHERE dedupe_key = %s AND ref_id IS NULL AND created_at > %s "
                "ORDER BY seq DESC LIMIT 1",
                (guard.key, now - unrecorded_window),
            )
            orphan = await cur.fetchone()
        unrecorded = None if orphan is None else Unrecorded(int(orphan["seq"]), float(orphan["created_at"]))
        return Claim(True, unrecorded=unrecorded)

    async def release_guard(self, guard: Guard) -> None:
        await self._execute("DELETE FROM guards WHERE key = %s AND holder = %s", (guard.key, guard.holder))

    async def guard_held(self, prefix: str) -> bool:
        params = (len(prefix), prefix, self._clock.now())
        return await self._one(_pg(STAGED_SQL["held"]), params) is not None

    async def guards(self) -> list[tuple[Guard, float]]:
        rows = await self._all("SELECT key, holder, expires_at FROM guards", ())
        return [(Guard(str(r["key"]), str(r["holder"])), float(r["expires_at"])) for r in rows]

    # --- tasks -------------------------------------------------------------------------

    async def create_task(self, row: TaskRow) -> None:
        await self._execute(_pg(TASK_SQL["insert"]), task_values(row))

    async def get_task(self, task_id: str) -> TaskRow | None:
        row = await self._one(_pg(TASK_SQL["get"]), (task_id,))
        return None if row is None else task_from_row(row)

    async def save_task(self, row: TaskRow) -> bool:
        return await self._execute(_pg(TASK_SQL["save"]), save_values(row)) == 1

    async def finish_task(self, row: TaskRow, *, holder: str | None) -> bool:
        return await self._execute(_pg(TASK_SQL["finish"]), finish_values(row, holder)) == 1

    async def renew_task_leases(self, holder: str, task_ids: list[str], until: float) -> set[str]:
        if not task_ids:
            return set()
        rows = await self._all(
            "UPDATE tasks SET lease_expires = %s WHERE task_id = ANY(%s) AND status = 'working' "
            "AND lease_holder = %s RETURNING task_id",
            (until, task_ids, holder),
        )
        return {str(row["task_id"]) for row in rows}

    async def adopt_tasks(self, holder: str, now: float, until: float, limit: int = 50) -> list[TaskRow]:
        rows = await self._all(
            "UPDATE tasks SET lease_holder = %s, lease_expires = %s WHERE task_id IN (SELECT task_id FROM tasks "
            "WHERE status = 'working' AND lease_expires <= %s AND expires_at > %s LIMIT %s FOR UPDATE SKIP LOCKED) "
            "RETURNING *",
            (holder, until, now, now, limit),
        )
        return [task_from_row(row) for row in rows]

    async def delete_expired_tasks(self, now: float) -> int:
        return await self._execute(_pg(TASK_SQL["delete_expired"]), (now,))

    # --- secrets -------------------------------------------------------------------

    async def shared_secret(self, name: str, candidate: bytes) -> bytes:
        async with self._transaction() as cur:
            # A replica storing its candidate at the same moment makes this wait, then do nothing; the
            # SELECT (a new snapshot under READ COMMITTED) then reads the winner's.
            await cur.execute(
                "INSERT INTO secrets (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING", (name, candidate)
            )
            await cur.execute("SELECT value FROM secrets WHERE name = %s", (name,))
            row = await cur.fetchone()
        return bytes(row["value"])


class _Overtaken(Exception):
    """A reservation read the caller's recent calls from a snapshot another reservation or release of the
    caller has since changed; it is rolled back and made again in turn."""


def _pg(statement: str) -> str:
    """A statement written for both dialects (`?` placeholders) in PostgreSQL's (`%s`)."""
    return statement.replace("?", "%s")
