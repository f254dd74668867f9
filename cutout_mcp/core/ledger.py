"""The job ledger: every paid call and every video job, in one SQLite file.

Why a file: a video outlives the call, the conversation and the server
process that started it, and each one cost credits. The ledger is what lets
an assistant find a job again, lets the server refuse to pay twice for the
same request, and sums what has been spent.

Durability and sharing (several server processes of one user open the same
file):

- WAL journal: readers never block the writer, and a killed process leaves
  no half-written transaction behind.
- `synchronous=NORMAL`: a commit is written to the WAL file (the OS page
  cache) before the call returns, so a committed row survives the server
  process crashing or being killed (`kill -9`), which is the guarantee the
  ledger needs: the machine keeps running and another server process reads
  the row. The WAL is fsynced at checkpoints, not per commit; only an OS
  crash or power cut can lose the last few commits (never corrupt the
  file). FULL fsynced every commit and cost 2.5-7.5 ms per write on ext4,
  most of the added latency of a paid call.
- `busy_timeout`: a writer waits for another process's write instead of
  failing; writes that read first use `BEGIN IMMEDIATE`, so two processes
  cannot both check the budget and then both spend.

Off the event loop: a write may wait on another process's lock or on fsync,
so every call runs in a worker thread (`anyio.to_thread.run_sync`) behind a
lock that serialises use of the one connection.

Credits live in `charges`, one row per paid call, reserved *before* the
upstream request (so a budget check and the spend are one transaction) and
released when cutout.pro provably did not charge. The reservation and the
result (`record_edit`, `record_video_job`) stay two commits: the charge must
be on disk before the request leaves, and the result id exists only after
the answer; one transaction would hold the write lock across the upstream
call and serialise every paid call of every process.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio

from cutout_mcp.clock import Clock, SystemClock, iso_utc
from cutout_mcp.core.results import ACTIVE_STATUSES, CreditSummary, JobStatus, LedgerJob, VideoJob
from cutout_mcp.errors import CutoutMcpError

logger = logging.getLogger(__name__)

FILE_NAME = "ledger.sqlite3"
BUSY_TIMEOUT_MS = 10_000
ChargeKind = Literal["video", "edit"]

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS video_jobs (
    id INTEGER PRIMARY KEY,
    principal TEXT NOT NULL,
    image_url TEXT NOT NULL,
    prompt TEXT,
    status TEXT NOT NULL,
    percentage REAL NOT NULL DEFAULT 0,
    wait_number INTEGER NOT NULL DEFAULT 0,
    result_url TEXT,
    cover_url TEXT,
    credits INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS video_jobs_newest ON video_jobs (principal, created_at DESC);
CREATE INDEX IF NOT EXISTS video_jobs_same_request ON video_jobs (principal, image_url, status);
CREATE TABLE IF NOT EXISTS charges (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    principal TEXT NOT NULL,
    kind TEXT NOT NULL,
    ref_id INTEGER,
    detail TEXT,
    credits INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS charges_by_principal ON charges (principal);
"""


class StorageError(CutoutMcpError):
    """The ledger cannot be read or written (the message names the cause and the setting to check)."""


class BudgetExceededError(CutoutMcpError):
    """A paid call would take the recorded spend past CUTOUT_CREDIT_BUDGET."""

    def __init__(self, price: int, spent: int, budget: int) -> None:
        remaining = max(0, budget - spent)
        super().__init__(
            f"Refused before contacting cutout.pro: this call costs {price} credits, but the credit budget "
            f"(CUTOUT_CREDIT_BUDGET={budget}) has {remaining} credits remaining ({spent} spent). Nothing was "
            "charged. Ask the user whether to raise the budget."
        )
        self.price, self.spent, self.budget, self.remaining = price, spent, budget, remaining


class Ledger:
    """One connection to the ledger file; async methods run the SQL in a worker thread."""

    def __init__(self, path: Path | str, clock: Clock | None = None) -> None:
        self.path = str(path)
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        # One worker thread at a time: the lock serialises the connection anyway, and 500 waiting video
        # jobs otherwise start anyio's default 40 threads, each blocked on the lock with its own stack and
        # malloc arena (RSS).
        self._limiter: anyio.CapacityLimiter | None = None
        self._db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def open_in(cls, state_dir: Path, clock: Clock | None = None) -> Ledger:
        """The ledger of `state_dir`, creating the folder (private to the user) when missing."""
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(state_dir / FILE_NAME, clock)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        def locked() -> _T:
            with self._lock:
                return fn(*args)

        if self._limiter is None:  # made on the event loop, at first use
            self._limiter = anyio.CapacityLimiter(1)
        try:
            return await anyio.to_thread.run_sync(locked, limiter=self._limiter)
        except sqlite3.Error as exc:  # the one place a database failure is translated
            raise StorageError(
                f"The job ledger cannot be used ({exc}). Check that CUTOUT_STATE_DIR is writable and has free space."
            ) from exc

    # --- credits -----------------------------------------------------------------

    async def reserve(self, principal: str, kind: ChargeKind, credits: int, budget: int | None) -> int:
        """Record a paid call about to be sent; raises BudgetExceededError instead when over budget."""
        return await self._run(self._reserve, principal, kind, credits, budget)

    def _reserve(self, principal: str, kind: ChargeKind, credits: int, budget: int | None) -> int:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if budget is not None:
                spent = int(db.execute("SELECT COALESCE(SUM(credits), 0) FROM charges").fetchone()[0])
                if spent + credits > budget:
                    raise BudgetExceededError(credits, spent, budget)
            cursor = db.execute(
                "INSERT INTO charges (principal, kind, credits, created_at) VALUES (?, ?, ?, ?)",
                (principal, kind, credits, self._clock.now()),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def release(self, charge: int) -> None:
        """Forget a reservation: cutout.pro provably did not charge for it."""
        await self._run(self._db.execute, "DELETE FROM charges WHERE seq = ?", (charge,))

    async def record_edit(self, charge: int, edit_id: int, model: str) -> None:
        await self._run(
            self._db.execute, "UPDATE charges SET ref_id = ?, detail = ? WHERE seq = ?", (edit_id, model, charge)
        )

    async def credits(self, principal: str, budget: int | None) -> CreditSummary:
        return await self._run(self._credits, principal, budget)

    def _credits(self, principal: str, budget: int | None) -> CreditSummary:
        row = self._db.execute(
            "SELECT COALESCE(SUM(credits), 0), COALESCE(SUM(CASE WHEN principal = ? THEN credits END), 0) FROM charges",
            (principal,),
        ).fetchone()
        total, mine = int(row[0]), int(row[1])
        remaining = None if budget is None else max(0, budget - total)
        return CreditSummary(spent=mine, spent_total=total, budget=budget, remaining=remaining)

    # --- video jobs ----------------------------------------------------------------

    async def record_video_job(
        self, charge: int | None, job_id: int, principal: str, image_url: str, prompt: str | None, credits: int
    ) -> None:
        """Write a just-submitted job (and tie its charge to it) in one transaction."""
        await self._run(self._record_video_job, charge, job_id, principal, image_url, prompt, credits)

    def _record_video_job(
        self, charge: int | None, job_id: int, principal: str, image_url: str, prompt: str | None, credits: int
    ) -> None:
        now = self._clock.now()
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT OR IGNORE INTO video_jobs (id, principal, image_url, prompt, status, credits, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
                (job_id, principal, image_url, prompt, credits, now, now),
            )
            if charge is not None:
                db.execute("UPDATE charges SET ref_id = ? WHERE seq = ?", (job_id, charge))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def update_job(self, job: VideoJob) -> None:
        """Store what a poll saw; a job the ledger never recorded is left alone."""
        await self._run(self._update_job, job)

    def _update_job(self, job: VideoJob) -> None:
        self._db.execute(
            "UPDATE video_jobs SET status = ?, percentage = ?, wait_number = ?, result_url = ?, cover_url = ?, "
            "updated_at = ? WHERE id = ? AND (status IS NOT ? OR percentage IS NOT ? OR wait_number IS NOT ? "
            "OR result_url IS NOT ? OR cover_url IS NOT ?)",
            (
                job.status,
                job.percentage,
                job.wait_number,
                job.result_url,
                job.cover_url,
                self._clock.now(),
                job.id,
                job.status,
                job.percentage,
                job.wait_number,
                job.result_url,
                job.cover_url,
            ),
        )

    async def owner(self, job_id: int) -> str | None:
        """Who submitted the job, or None when the ledger does not know it."""
        return await self._run(self._owner, job_id)

    def _owner(self, job_id: int) -> str | None:
        row = self._db.execute("SELECT principal FROM video_jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else str(row[0])

    async def get_job(self, principal: str, job_id: int) -> LedgerJob | None:
        return await self._run(self._get_job, principal, job_id)

    def _get_job(self, principal: str, job_id: int) -> LedgerJob | None:
        row = self._db.execute(
            "SELECT * FROM video_jobs WHERE id = ? AND principal = ?", (job_id, principal)
        ).fetchone()
        return None if row is None else _job(row)

    async def list_jobs(self, principal: str, status: JobStatus | None = None, limit: int = 20) -> list[LedgerJob]:
        """The caller's jobs, newest first."""
        return await self._run(self._list_jobs, principal, status, limit)

    def _list_jobs(self, principal: str, status: JobStatus | None, limit: int) -> list[LedgerJob]:
        rows = self._db.execute(
            "SELECT * FROM video_jobs WHERE principal = ? AND (? IS NULL OR status = ?) "
            "ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (principal, status, status, limit),
        ).fetchall()
        return [_job(row) for row in rows]

    async def find_active(self, principal: str, image_url: str, prompt: str | None) -> LedgerJob | None:
        """The newest unfinished job for the same request, which a new submit would pay for again."""
        return await self._run(self._find_active, principal, image_url, prompt)

    def _find_active(self, principal: str, image_url: str, prompt: str | None) -> LedgerJob | None:
        row = self._db.execute(
            "SELECT * FROM video_jobs WHERE principal = ? AND image_url = ? AND prompt IS ? "
            "AND status IN (?, ?) ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (principal, image_url, prompt, *ACTIVE_STATUSES),
        ).fetchone()
        return None if row is None else _job(row)


@asynccontextmanager
async def open_ledger(state_dir: Path, clock: Clock | None = None) -> AsyncIterator[Ledger]:
    """The ledger in `state_dir`, closed on exit; if that folder is unusable, one in memory, so the server runs."""
    try:
        ledger = await anyio.to_thread.run_sync(Ledger.open_in, state_dir, clock)
    except (OSError, sqlite3.Error) as exc:
        logger.warning(
            "Cannot use the job ledger in %s (%s): jobs are remembered only until this server stops. "
            "Set CUTOUT_STATE_DIR to a writable folder.",
            state_dir,
            exc,
        )
        ledger = Ledger(":memory:", clock)
    try:
        yield ledger
    finally:
        ledger.close()


def _job(row: sqlite3.Row) -> LedgerJob:
    return LedgerJob(
        id=row["id"],
        status=row["status"],
        percentage=row["percentage"],
        wait_number=row["wait_number"],
        image_url=row["image_url"],
        prompt=row["prompt"],
        result_url=row["result_url"],
        cover_url=row["cover_url"],
        credits=row["credits"],
        created_at=iso_utc(row["created_at"]),
        updated_at=iso_utc(row["updated_at"]),
    )
