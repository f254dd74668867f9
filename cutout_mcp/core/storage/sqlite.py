"""The SQLite backend: one file in CUTOUT_STATE_DIR, shared by every server process of one machine.

Durability (WAL, `synchronous=NORMAL`): a commit reaches the WAL file (the OS page cache) before the
call returns, so a committed row survives the server being killed (`kill -9`) and another process
reads it at once; only an OS crash or power cut can lose the last few commits, never corrupt the
file. Writes that read first use `BEGIN IMMEDIATE`, so two processes cannot both check the budget,
or both find a guard free, and then both act.

Speed without blocking the event loop: most statements take well under 0.1 ms, while handing one to
a worker thread and back costs about 0.3 ms. So each call first runs on the event loop on a
connection with no busy timeout, and only when another process holds the write lock (SQLITE_BUSY)
does it move to a second connection in one worker thread, which waits up to `BUSY_TIMEOUT_MS` for
the lock. A wait for another process therefore never blocks the event loop. While any call waits in
the thread, later calls queue behind it, so writes keep their order.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio

from cutout_mcp.clock import Clock, SystemClock
from cutout_mcp.core.results import ACTIVE_STATUSES, CreditSummary, JobStatus, LedgerJob, VideoJob
from cutout_mcp.core.storage import schema
from cutout_mcp.core.storage.base import (
    TASK_COLUMNS,
    BudgetExceededError,
    ChargeKind,
    Claim,
    Guard,
    GuardLostError,
    Storage,
    StorageError,
    TaskRow,
    Unrecorded,
    credit_summary,
    job_from_row,
    task_from_row,
    task_values,
)

logger = logging.getLogger(__name__)

FILE_NAME = "ledger.sqlite3"
BUSY_TIMEOUT_MS = 10_000
MEMORY = ":memory:"
SQLITE_BUSY, SQLITE_LOCKED = 5, 6

_T = TypeVar("_T")
Db = sqlite3.Connection


class SqliteStorage(Storage):
    """The storage in one SQLite file (or in memory, for one process only)."""

    backend = "sqlite"

    def __init__(self, path: Path | str, clock: Clock | None = None) -> None:
        self.path = str(path)
        self._clock = clock or SystemClock()
        self._memory = self.path == MEMORY
        # Opening waits for other processes (one may be migrating); afterwards the event loop's
        # connection never waits: a busy database sends the call to the worker thread instead.
        self._inline = _connect(self.path, busy_ms=0 if self._memory else BUSY_TIMEOUT_MS)
        try:
            _migrate(self._inline)
            self._inline.execute("PRAGMA busy_timeout = 0")
        except schema.NewerSchemaError as exc:
            self._inline.close()
            raise StorageError(f"The job ledger {self.path} cannot be used: {exc}.") from exc
        except BaseException:
            self._inline.close()
            raise
        # An in-memory database is private to its one connection: nothing else can hold its lock.
        self._worker = None if self._memory else _connect(self.path, busy_ms=BUSY_TIMEOUT_MS)
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
        self, principal: str, kind: ChargeKind, credits: int, budget: int | None, guard: Guard | None = None
    ) -> int:
        return await self._run(_reserve, principal, kind, credits, budget, guard, self._now())

    async def release(self, charge: int) -> None:
        await self._run(_release, charge)

    async def record_edit(self, charge: int, edit_id: int, model: str) -> None:
        await self._run(_execute, "UPDATE charges SET ref_id = ?, detail = ? WHERE seq = ?", (edit_id, model, charge))

    async def credits(self, principal: str, budget: int | None) -> CreditSummary:
        return await self._run(_credits, principal, budget)

    # --- video jobs ----------------------------------------------------------------

    async def record_video_job(
        self, charge: int | None, job_id: int, principal: str, image_url: str, prompt: str | None, credits: int
    ) -> None:
        await self._run(_record_video_job, charge, job_id, principal, image_url, prompt, credits, self._now())

    async def update_job(self, job: VideoJob) -> None:
        await self._run(_update_job, job, self._now())

    async def owner(self, job_id: int) -> str | None:
        row = await self._run(_one, "SELECT principal FROM video_jobs WHERE id = ?", (job_id,))
        return None if row is None else str(row[0])

    async def get_job(self, principal: str, job_id: int) -> LedgerJob | None:
        row = await self._run(_one, "SELECT * FROM video_jobs WHERE id = ? AND principal = ?", (job_id, principal))
        return None if row is None else job_from_row(row)

    async def list_jobs(self, principal: str, status: JobStatus | None = None, limit: int = 20) -> list[LedgerJob]:
        rows = await self._run(
            _all,
            "SELECT * FROM video_jobs WHERE principal = ? AND (? IS NULL OR status = ?) "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (principal, status, status, limit),
        )
        return [job_from_row(row) for row in rows]

    async def find_active(self, principal: str, image_url: str, prompt: str | None) -> LedgerJob | None:
        row = await self._run(
            _one,
            "SELECT * FROM video_jobs WHERE principal = ? AND image_url = ? AND prompt IS ? "
            "AND status IN (?, ?) ORDER BY created_at DESC, id DESC LIMIT 1",
            (principal, image_url, prompt, *ACTIVE_STATUSES),
        )
        return None if row is None else job_from_row(row)

    # --- the dedupe guard ------------------------------------------------------------

    async def claim_guard(self, guard: Guard, lease_seconds: float, unrecorded_window: float) -> Claim:
        return await self._run(_claim_guard, guard, lease_seconds, unrecorded_window, self._now())

    async def release_guard(self, guard: Guard) -> None:
        await self._run(_execute, "DELETE FROM guards WHERE key = ? AND holder = ?", (guard.key, guard.holder))

    # --- tasks -------------------------------------------------------------------------

    async def create_task(self, row: TaskRow) -> None:
        marks = ", ".join("?" * len(TASK_COLUMNS))
        await self._run(_execute, f"INSERT INTO tasks ({', '.join(TASK_COLUMNS)}) VALUES ({marks})", task_values(row))  # noqa: S608 - constant columns

    async def get_task(self, task_id: str) -> TaskRow | None:
        row = await self._run(_one, "SELECT * FROM tasks WHERE task_id = ?", (task_id,))
        return None if row is None else task_from_row(row)

    async def save_task(self, row: TaskRow) -> bool:
        changed = await self._run(
            _execute,
            "UPDATE tasks SET status_message = ?, resume_hint = ?, job_id = ?, credits = ?, updated_at = ?, "
            "lease_expires = ? WHERE task_id = ? AND status = 'working' AND lease_holder = ?",
            (
                row.status_message,
                row.resume_hint,
                row.job_id,
                row.credits,
                row.updated_at,
                row.lease_expires,
                row.task_id,
                row.lease_holder,
            ),
        )
        return changed == 1

    async def finish_task(self, row: TaskRow, *, holder: str | None) -> bool:
        values = task_values(row)
        changed = await self._run(
            _execute,
            "UPDATE tasks SET status = ?, status_message = ?, resume_hint = ?, result = ?, error = ?, "
            "updated_at = ? WHERE task_id = ? AND status = 'working' AND (? IS NULL OR lease_holder = ?)",
            (
                row.status,
                row.status_message,
                row.resume_hint,
                values[9],
                values[10],
                row.updated_at,
                row.task_id,
                holder,
                holder,
            ),
        )
        return changed == 1

    async def renew_task_leases(self, holder: str, task_ids: list[str], until: float) -> set[str]:
        return await self._run(_renew_task_leases, holder, task_ids, until)

    async def adopt_tasks(self, holder: str, now: float, until: float, limit: int = 50) -> list[TaskRow]:
        rows = await self._run(
            _all,
            "UPDATE tasks SET lease_holder = ?, lease_expires = ? WHERE task_id IN (SELECT task_id FROM tasks "
            "WHERE status = 'working' AND lease_expires <= ? AND expires_at > ? LIMIT ?) RETURNING *",
            (holder, until, now, now, limit),
        )
        return [task_from_row(row) for row in rows]

    async def delete_expired_tasks(self, now: float) -> int:
        return await self._run(_execute, "DELETE FROM tasks WHERE expires_at <= ?", (now,))

    # --- secrets -------------------------------------------------------------------

    async def shared_secret(self, name: str, candidate: bytes) -> bytes:
        return await self._run(_shared_secret, name, candidate)


# --- the SQL, as plain functions of a connection (run inline or in the worker thread) -------------


def _connect(path: str, *, busy_ms: int) -> Db:
    db = sqlite3.connect(path, timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute(f"PRAGMA busy_timeout = {busy_ms}")
    if path != MEMORY:
        _use_wal(db, busy_ms)
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def _use_wal(db: Db, busy_ms: int) -> None:
    """Switch the file to WAL, waiting up to `busy_ms` for other processes doing the same.

    When several processes open a new ledger at once, SQLite can answer the switch with "database is
    locked" at once instead of calling the busy handler (about one start in fifteen with four at
    once), so the wait is made here. Runs at start-up, in a worker thread.
    """
    deadline = time.monotonic() + busy_ms / 1000
    delay = 0.002
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(2 * delay, 0.1)


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock (SQLITE_BUSY / SQLITE_LOCKED)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return int(code) & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


@contextmanager
def _immediate(db: Db) -> Iterator[Db]:
    """A write transaction that takes the file's write lock first (so what it reads stays true)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _migrate(db: Db) -> None:
    # The first process to take the write lock migrates; the others wait for it (up to the busy
    # timeout) and then find the schema current.
    with _immediate(db):
        db.execute(schema.VERSION_TABLE)
        row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = int(row[0] or 0)
        steps = schema.pending(current, schema.SQLITE)
        for number, statements in steps:
            for statement in statements:
                db.execute(statement)
            logger.info("Ledger schema upgraded to version %s", number)
        if steps:
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (schema.VERSION,))


def _execute(db: Db, sql: str, params: tuple[Any, ...]) -> int:
    return db.execute(sql, params).rowcount


def _one(db: Db, sql: str, params: tuple[Any, ...]) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute(sql, params).fetchone()
    return row


def _all(db: Db, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
    return db.execute(sql, params).fetchall()


def _reserve(
    db: Db, principal: str, kind: ChargeKind, credits: int, budget: int | None, guard: Guard | None, now: float
) -> int:
    with _immediate(db):
        if guard is not None and _guard_holder(db, guard.key) != guard.holder:
            raise GuardLostError(
                "Another server process took over this request's duplicate check while it was waiting; "
                "nothing was sent to cutout.pro or charged. Call generate_video again."
            )
        counted = db.execute(
            "UPDATE spend SET spent = spent + ? WHERE id = 1 AND (? IS NULL OR spent + ? <= ?) RETURNING spent",
            (credits, budget, credits, budget),
        ).fetchone()
        if counted is None:
            assert budget is not None
            spent = int(db.execute("SELECT spent FROM spend WHERE id = 1").fetchone()[0])
            raise BudgetExceededError(credits, spent, budget)
        cursor = db.execute(
            "INSERT INTO charges (principal, kind, credits, created_at, dedupe_key) VALUES (?, ?, ?, ?, ?)",
            (principal, kind, credits, now, None if guard is None else guard.key),
        )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _shared_secret(db: Db, name: str, candidate: bytes) -> bytes:
    with _immediate(db):
        db.execute("INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)", (name, candidate))
        row = db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
    return bytes(row[0])


def _release(db: Db, charge: int) -> None:
    with _immediate(db):
        row = db.execute("DELETE FROM charges WHERE seq = ? RETURNING credits", (charge,)).fetchone()
        if row is not None:
            db.execute("UPDATE spend SET spent = spent - ? WHERE id = 1", (int(row[0]),))


def _credits(db: Db, principal: str, budget: int | None) -> CreditSummary:
    total = int(db.execute("SELECT spent FROM spend WHERE id = 1").fetchone()[0])
    mine = db.execute("SELECT COALESCE(SUM(credits), 0) FROM charges WHERE principal = ?", (principal,)).fetchone()
    return credit_summary(total, int(mine[0]), budget)


def _record_video_job(
    db: Db,
    charge: int | None,
    job_id: int,
    principal: str,
    image_url: str,
    prompt: str | None,
    credits: int,
    now: float,
) -> None:
    with _immediate(db):
        db.execute(
            "INSERT OR IGNORE INTO video_jobs (id, principal, image_url, prompt, status, credits, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
            (job_id, principal, image_url, prompt, credits, now, now),
        )
        if charge is not None:
            db.execute("UPDATE charges SET ref_id = ? WHERE seq = ?", (job_id, charge))


def _update_job(db: Db, job: VideoJob, now: float) -> None:
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


def _claim_guard(db: Db, guard: Guard, lease_seconds: float, window: float, now: float) -> Claim:
    with _immediate(db):
        claimed = db.execute(
            "INSERT INTO guards (key, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
            "holder = excluded.holder, expires_at = excluded.expires_at WHERE guards.expires_at <= ? RETURNING key",
            (guard.key, guard.holder, now + lease_seconds, now),
        ).fetchone()
        if claimed is None:
            held = db.execute("SELECT expires_at FROM guards WHERE key = ?", (guard.key,)).fetchone()
            return Claim(False, held_until=None if held is None else float(held[0]))
        orphan = db.execute(
            "SELECT seq, created_at FROM charges WHERE dedupe_key = ? AND ref_id IS NULL AND created_at > ? "
            "ORDER BY seq DESC LIMIT 1",
            (guard.key, now - window),
        ).fetchone()
    return Claim(True, unrecorded=None if orphan is None else Unrecorded(int(orphan[0]), float(orphan[1])))


def _renew_task_leases(db: Db, holder: str, task_ids: list[str], until: float) -> set[str]:
    held: set[str] = set()
    with _immediate(db):
        for task_id in task_ids:
            row = db.execute(
                "UPDATE tasks SET lease_expires = ? WHERE task_id = ? AND status = 'working' AND lease_holder = ? "
                "RETURNING task_id",
                (until, task_id, holder),
            ).fetchone()
            if row is not None:
                held.add(str(row[0]))
    return held
