"""The SQLite backend: one file in CUTOUT_STATE_DIR, shared by every server process of one machine.

Opening, durability and migration are `sqlite_db`; the SQL itself is `sqlite_sql`.

Speed without blocking the event loop: most statements take well under 0.1 ms, while handing one to
a worker thread and back costs about 0.3 ms. So each call first runs on the event loop on a
connection with no busy timeout, and only when another process holds the write lock (SQLITE_BUSY)
does it move to a second connection in one worker thread, which waits up to `BUSY_TIMEOUT_MS` for
the lock. A wait for another process therefore never blocks the event loop. While any call waits in
the thread, later calls queue behind it, so writes keep their order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio

from cutout_mcp.clock import Clock, SystemClock
from cutout_mcp.core.results import ACTIVE_STATUSES, CreditSummary, JobStatus, LedgerJob, VideoJob
from cutout_mcp.core.storage import schema, sqlite_db
from cutout_mcp.core.storage import sqlite_sql as sql
from cutout_mcp.core.storage.base import (
    ChargeKind,
    Claim,
    Guard,
    Storage,
    StorageError,
    TaskRow,
    job_from_row,
    task_from_row,
    task_values,
)
from cutout_mcp.core.storage.limits import CallLimits
from cutout_mcp.core.storage.sqlite_db import BUSY_TIMEOUT_MS, FILE_NAME, MEMORY, LedgerUnusableError, is_busy
from cutout_mcp.core.storage.statements import STAGED_SQL, TASK_SQL, finish_values, save_values

__all__ = ["BUSY_TIMEOUT_MS", "FILE_NAME", "MEMORY", "LedgerUnusableError", "SqliteStorage", "is_busy"]

_T = TypeVar("_T")


class SqliteStorage(Storage):
    """The storage in one SQLite file (or in memory, for one process only)."""

    backend = "sqlite"

    def __init__(self, path: Path | str, clock: Clock | None = None) -> None:
        self.path = str(path)
        self._clock = clock or SystemClock()
        self._memory = self.path == MEMORY
        if not self._memory:  # read-only first: a file that fails is never written to
            sqlite_db.check_file(self.path)
        # Opening waits for other processes (one may be migrating); afterwards the event loop's
        # connection never waits: a busy database sends the call to the worker thread instead.
        self._inline = sqlite_db.connect(self.path, busy_ms=0 if self._memory else BUSY_TIMEOUT_MS)
        try:
            sqlite_db.migrate(self._inline)
            self._inline.execute("PRAGMA busy_timeout = 0")
        except schema.NewerSchemaError as exc:
            self._inline.close()
            raise LedgerUnusableError(self.path, str(exc)) from exc
        except sqlite3.DatabaseError as exc:
            self._inline.close()
            if isinstance(exc, sqlite3.OperationalError) and is_busy(exc):
                raise
            raise LedgerUnusableError(self.path, f"its schema cannot be brought up to date ({exc})") from exc
        except BaseException:
            self._inline.close()
            raise
        # An in-memory database is private to its one connection: nothing else can hold its lock.
        self._worker = None if self._memory else sqlite_db.connect(self.path, busy_ms=BUSY_TIMEOUT_MS)
        self._waiting = 0
        # One worker thread: 500 waiting jobs would otherwise start anyio's default 40 threads, each
        # blocked on the same lock with its own stack and malloc arena.
        self._limiter: anyio.CapacityLimiter | None = None

    @classmethod
    def open_in(cls, state_dir: Path, clock: Clock | None = None) -> SqliteStorage:
        """The storage of `state_dir`, creating the folder (private to the user) when missing."""
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(state_dir / FILE_NAME, clock)

    def close(self) -> None:
        self._inline.close()
        if self._worker is not None:
            self._worker.close()

    async def aclose(self) -> None:
        self.close()

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        try:
            if self._waiting == 0:
                try:
                    return fn(self._inline, *args)
                except sqlite3.OperationalError as exc:
                    if self._worker is None or not is_busy(exc):
                        raise
            assert self._worker is not None
            if self._limiter is None:  # made on the event loop, at first use
                self._limiter = anyio.CapacityLimiter(1)
            self._waiting += 1
            try:
                return await anyio.to_thread.run_sync(fn, self._worker, *args, limiter=self._limiter)
            finally:
                self._waiting -= 1
        except sqlite3.Error as exc:  # the one place a database failure is translated
            raise StorageError(
                f"The job ledger cannot be used ({exc}). Check that CUTOUT_STATE_DIR is writable and has free space."
            ) from exc

    def _now(self) -> float:
        return self._clock.now()

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
        now = self._now()
        limits = None if limits is None else limits.at(now)
        return await self._run(sql.reserve, principal, kind, credits, budget, guard, now, limits, detail)

    async def release(self, charge: int) -> None:
        await self._run(sql.release, charge)

    async def record_edit(self, charge: int, edit_id: int, model: str) -> None:
        update = "UPDATE charges SET ref_id = ?, detail = ? WHERE seq = ?"
        await self._run(sql.execute, update, (edit_id, model, charge))

    async def credits(self, principal: str, budget: int | None, limits: CallLimits | None = None) -> CreditSummary:
        return await self._run(sql.credits, principal, budget, limits)

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
        job = (job_id, principal, image_url, image_ref or image_url, staged_key, prompt, credits)
        await self._run(sql.record_video_job, charge, job, self._now())

    async def update_job(self, job: VideoJob) -> None:
        await self._run(sql.update_job, job, self._now())

    async def owner(self, job_id: int) -> str | None:
        row = await self._run(sql.one, "SELECT principal FROM video_jobs WHERE id = ?", (job_id,))
        return None if row is None else str(row[0])

    async def get_job(self, principal: str, job_id: int) -> LedgerJob | None:
        row = await self._run(sql.one, "SELECT * FROM video_jobs WHERE id = ? AND principal = ?", (job_id, principal))
        return None if row is None else job_from_row(row)

    async def list_jobs(self, principal: str, status: JobStatus | None = None, limit: int = 20) -> list[LedgerJob]:
        rows = await self._run(
            sql.all_rows,
            "SELECT * FROM video_jobs WHERE principal = ? AND (? IS NULL OR status = ?) "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (principal, status, status, limit),
        )
        return [job_from_row(row) for row in rows]

    async def find_active(self, principal: str, image_ref: str, prompt: str | None) -> LedgerJob | None:
        row = await self._run(
            sql.one,
            "SELECT * FROM video_jobs WHERE principal = ? AND image_ref = ? AND prompt IS ? "
            "AND status IN (?, ?) ORDER BY created_at DESC, id DESC LIMIT 1",
            (principal, image_ref, prompt, *ACTIVE_STATUSES),
        )
        return None if row is None else job_from_row(row)

    # --- staged images ---------------------------------------------------------------

    async def staged_key_of(self, job_id: int) -> str | None:
        row = await self._run(sql.one, STAGED_SQL["key_of"], (job_id,))
        return None if row is None else row[0]

    async def staged_key_in_use(self, key: str) -> bool:
        return await self._run(sql.one, STAGED_SQL["in_use"], (key, *ACTIVE_STATUSES)) is not None

    async def forget_staged(self, key: str) -> None:
        await self._run(sql.execute, STAGED_SQL["forget"], (key, *ACTIVE_STATUSES))

    async def finished_staged_keys(self, limit: int = 100) -> list[str]:
        return [row[0] for row in await self._run(sql.all_rows, STAGED_SQL["finished"], (*ACTIVE_STATUSES, limit))]

    # --- the dedupe guard ------------------------------------------------------------

    async def claim_guard(self, guard: Guard, lease_seconds: float, unrecorded_window: float) -> Claim:
        return await self._run(sql.claim_guard, guard, lease_seconds, unrecorded_window, self._now())

    async def release_guard(self, guard: Guard) -> None:
        await self._run(sql.execute, "DELETE FROM guards WHERE key = ? AND holder = ?", (guard.key, guard.holder))

    async def guard_held(self, prefix: str) -> bool:
        params = (len(prefix), prefix, self._now())
        return await self._run(sql.one, STAGED_SQL["held"], params) is not None

    async def guards(self) -> list[tuple[Guard, float]]:
        rows = await self._run(sql.all_rows, "SELECT key, holder, expires_at FROM guards", ())
        return [(Guard(str(r[0]), str(r[1])), float(r[2])) for r in rows]

    # --- tasks -------------------------------------------------------------------------

    async def create_task(self, row: TaskRow) -> None:
        await self._run(sql.execute, TASK_SQL["insert"], task_values(row))

    async def get_task(self, task_id: str) -> TaskRow | None:
        row = await self._run(sql.one, TASK_SQL["get"], (task_id,))
        return None if row is None else task_from_row(row)

    async def save_task(self, row: TaskRow) -> bool:
        return await self._run(sql.execute, TASK_SQL["save"], save_values(row)) == 1

    async def finish_task(self, row: TaskRow, *, holder: str | None) -> bool:
        return await self._run(sql.execute, TASK_SQL["finish"], finish_values(row, holder)) == 1

    async def renew_task_leases(self, holder: str, task_ids: list[str], until: float) -> set[str]:
        return await self._run(sql.renew_task_leases, holder, task_ids, until)

    async def adopt_tasks(self, holder: str, now: float, until: float, limit: int = 50) -> list[TaskRow]:
        rows = await self._run(
            sql.all_rows,
            "UPDATE tasks SET lease_holder = ?, lease_expires = ? WHERE task_id IN (SELECT task_id FROM tasks "
            "WHERE status = 'working' AND lease_expires <= ? AND expires_at > ? LIMIT ?) RETURNING *",
            (holder, until, now, now, limit),
        )
        return [task_from_row(row) for row in rows]

    async def delete_expired_tasks(self, now: float) -> int:
        return await self._run(sql.execute, TASK_SQL["delete_expired"], (now,))

    # --- secrets -------------------------------------------------------------------

    async def shared_secret(self, name: str, candidate: bytes) -> bytes:
        return await self._run(sql.shared_secret, name, candidate)
