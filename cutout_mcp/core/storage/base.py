"""The storage interface every backend implements, and what the backends share: errors, rows, models.

One small async interface holds everything that must be shared by every process serving one user or
one team: the ledger (video jobs, charges, the budget), the dedupe guard for identical in-flight
submits, and task records. `sqlite.SqliteStorage` keeps it in one file in `CUTOUT_STATE_DIR` (the
zero-setup default, shared by the processes of one machine); `postgres.PostgresStorage` keeps it in
PostgreSQL (`CUTOUT_DATABASE_URL`), shared by replicas on any number of machines. Both give the same
guarantees, and one parametrized test suite holds them to it (`tests/test_storage.py`):

- a charge is reserved before the upstream request, in the same transaction as a checked counter
  (`spend`), so concurrent calls in any number of processes never take the spend past the budget;
  the caller's allowance and session cap (`limits.CallLimits`) are counters moved in that same
  transaction, and the rate is read from the caller's newest charges serialised per caller, so they
  cannot be passed either;
- a guard row, claimed atomically with a lease, lets one process at a time submit a given request;
  a claim whose lease ran out (its holder died) may be taken over, and the taker is told about any
  charge the dead holder reserved without recording what it bought (`Claim.unrecorded`);
- a task row is written before its handle is returned, carries the lease of the process running it,
  and is adopted by another process when that lease runs out.

Times are epoch seconds from the injected clock, so replicas on several machines need synchronised
clocks (NTP) for leases; a few seconds of skew only shortens or lengthens a lease by as much.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from cutout_mcp.clock import iso_utc
from cutout_mcp.core.results import CreditSummary, JobStatus, LedgerJob, VideoJob
from cutout_mcp.core.storage.limits import CallLimits
from cutout_mcp.errors import CutoutMcpError

ChargeKind = Literal["video", "edit"]
TaskStatus = Literal["working", "input_required", "completed", "failed", "cancelled"]


class StorageError(CutoutMcpError):
    """The storage cannot be read or written (the message names the cause and the setting to check)."""


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


class GuardLostError(CutoutMcpError):
    """The dedupe guard of this request was taken over before its charge was reserved; nothing was sent."""


@dataclass(frozen=True)
class Guard:
    """A claimed dedupe guard: `key` names the request, `holder` the one call holding it."""

    key: str
    holder: str


@dataclass(frozen=True)
class Unrecorded:
    """A charge reserved for the same request that never recorded what it bought (its process died,
    its request failed in a way that may have charged, or recording it failed)."""

    charge: int
    reserved_at: float


@dataclass(frozen=True)
class Claim:
    """The outcome of `claim_guard`: claimed (possibly with an unrecorded earlier charge) or held."""

    claimed: bool
    held_until: float | None = None
    unrecorded: Unrecorded | None = None
    holder: str | None = None
    """Who holds the guard when it was not claimed (`core.money.owners` can tell whether that process is dead)."""


@dataclass(frozen=True)
class TaskRow:
    """A task as every replica sees it (`server.tasks` owns what the fields mean on the wire)."""

    task_id: str
    owner: str
    tool: str
    status: TaskStatus
    created_at: float
    updated_at: float
    expires_at: float
    status_message: str | None = None
    resume_hint: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    job_id: int | None = None
    """The upstream job once submitted: what another replica needs to finish the task."""
    credits: int = 0
    """What the task's submit cost (0 when it reused an identical unfinished job)."""
    lease_holder: str | None = None
    lease_expires: float = 0.0

    def with_(self, **changes: Any) -> TaskRow:
        return replace(self, **changes)


class Storage(ABC):
    """Jobs, charges, the budget, dedupe guards and tasks, shared by every process of one server."""

    backend: str
    """"sqlite" or "postgresql", for logs and errors."""

    # --- lifecycle ---------------------------------------------------------------

    @abstractmethod
    async def aclose(self) -> None: ...

    async def ping(self) -> None:
        """A cheap read that raises `StorageError` when the ledger cannot answer (the readiness check);
        the backends answer it with `SELECT 1`."""
        await self.credits("", None)

    # --- credits -----------------------------------------------------------------

    @abstractmethod
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
        """Record a paid call about to be sent and return its charge id.

        Raises BudgetExceededError when the spend would pass `budget` (checked against one counter in
        the same transaction), AllowanceExceededError when it would pass one of `limits` (the caller's
        and the session's counters, moved in the same transaction; the charge is stored with
        `limits.session` and the caller's name), and GuardLostError when `guard` is no longer held by its
        holder. `detail` is what the call buys (an edit's model), kept even when its outcome stays unknown.
        """

    @abstractmethod
    async def release(self, charge: int) -> None:
        """Forget a reservation: cutout.pro provably did not charge for it."""

    @abstractmethod
    async def record_edit(self, charge: int, edit_id: int, model: str) -> None: ...

    @abstractmethod
    async def credits(self, principal: str, budget: int | None, limits: CallLimits | None = None) -> CreditSummary:
        """What the caller and everyone spent, the budget, and (with `limits`) the caller's own share."""

    # --- video jobs ----------------------------------------------------------------

    @abstractmethod
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
        """Write a just-submitted job (and tie its charge to it) in one transaction.

        `image_url` is what is shown (a URL, a path, `upload:…`); `image_ref` identifies the request for
        `find_active` (default: `image_url`); `staged_key` is the staged object the job uses, if any."""

    @abstractmethod
    async def update_job(self, job: VideoJob) -> None:
        """Store what a poll saw; a job the ledger never recorded is left alone."""

    @abstractmethod
    async def owner(self, job_id: int) -> str | None:
        """Who submitted the job, or None when the ledger does not know it."""

    @abstractmethod
    async def get_job(self, principal: str, job_id: int) -> LedgerJob | None: ...

    @abstractmethod
    async def list_jobs(self, principal: str, status: JobStatus | None = None, limit: int = 20) -> list[LedgerJob]:
        """The caller's jobs, newest first."""

    @abstractmethod
    async def find_active(self, principal: str, image_ref: str, prompt: str | None) -> LedgerJob | None:
        """The newest unfinished job for the same request (same `image_ref` and prompt), which a new submit
        would pay for again."""

    # --- staged images ---------------------------------------------------------------

    @abstractmethod
    async def staged_key_of(self, job_id: int) -> str | None:
        """The staged object job `job_id` still holds, if any."""

    @abstractmethod
    async def staged_key_in_use(self, key: str) -> bool:
        """Whether an unfinished job uses the staged object `key` (then it must not be deleted)."""

    @abstractmethod
    async def forget_staged(self, key: str) -> None:
        """Finished jobs no longer hold `key` (it was deleted, or an unfinished job holds it now)."""

    @abstractmethod
    async def finished_staged_keys(self, limit: int = 100) -> list[str]:
        """Staged objects that finished jobs still hold: what a sweep releases (after a restart, say)."""

    # --- the dedupe guard ------------------------------------------------------------

    @abstractmethod
    async def claim_guard(self, guard: Guard, lease_seconds: float, unrecorded_window: float) -> Claim:
        """Claim `guard.key` for `guard.holder` unless another holder's lease is still running.

        On a claim, also report the newest charge reserved for this key within `unrecorded_window`
        seconds that never recorded what it bought.
        """

    @abstractmethod
    async def release_guard(self, guard: Guard) -> None: ...

    @abstractmethod
    async def guard_held(self, prefix: str) -> bool:
        """Whether any guard whose key starts with `prefix` is still within its lease (`core.inputs.staged` marks
        a staged object's submits under way this way)."""

    @abstractmethod
    async def guards(self) -> list[tuple[Guard, float]]:
        """Every guard row with its lease end (for cleaning up the guards of dead processes)."""

    # --- tasks -------------------------------------------------------------------------

    @abstractmethod
    async def create_task(self, row: TaskRow) -> None: ...

    @abstractmethod
    async def get_task(self, task_id: str) -> TaskRow | None: ...

    @abstractmethod
    async def save_task(self, row: TaskRow) -> bool:
        """Store the progress of a working task held by `row.lease_holder`; False if it is no longer
        working or no longer held by that holder (cancelled elsewhere, or adopted)."""

    @abstractmethod
    async def finish_task(self, row: TaskRow, *, holder: str | None) -> bool:
        """Move a working task to `row.status` (a terminal one); False if it was no longer working.
        With `holder`, only while that holder holds the lease."""

    @abstractmethod
    async def renew_task_leases(self, holder: str, task_ids: list[str], until: float) -> set[str]:
        """Extend the leases `holder` holds; returns the ids still working and held by it."""

    @abstractmethod
    async def adopt_tasks(self, holder: str, now: float, until: float, limit: int = 50) -> list[TaskRow]:
        """Take over working, unexpired tasks whose lease ran out, returning them as now held."""

    @abstractmethod
    async def delete_expired_tasks(self, now: float) -> int: ...

    # --- secrets -------------------------------------------------------------------------

    @abstractmethod
    async def shared_secret(self, name: str, candidate: bytes) -> bytes:
        """The secret called `name`, the same for every process sharing this storage and after restarts.

        The first process to ask stores its `candidate`; every later call, here or elsewhere, gets that one.
        """


# --- what the backends share -------------------------------------------------------------


class Row(Protocol):
    """A database row read by column name (sqlite3.Row, psycopg's dict rows)."""

    def __getitem__(self, key: str, /) -> Any: ...


def job_from_row(row: Row) -> LedgerJob:
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


def credit_summary(total: int, mine: int, budget: int | None) -> CreditSummary:
    remaining = None if budget is None else max(0, budget - total)
    return CreditSummary(spent=mine, spent_total=total, budget=budget, remaining=remaining)


TASK_COLUMNS = (
    "task_id",
    "owner",
    "tool",
    "status",
    "created_at",
    "updated_at",
    "expires_at",
    "status_message",
    "resume_hint",
    "result",
    "error",
    "job_id",
    "credits",
    "lease_holder",
    "lease_expires",
)


def task_values(row: TaskRow) -> tuple[Any, ...]:
    """The row's values in TASK_COLUMNS order, JSON fields as text (both backends store them as text)."""
    return (
        row.task_id,
        row.owner,
        row.tool,
        row.status,
        row.created_at,
        row.updated_at,
        row.expires_at,
        row.status_message,
        row.resume_hint,
        None if row.result is None else json.dumps(row.result),
        None if row.error is None else json.dumps(row.error),
        row.job_id,
        row.credits,
        row.lease_holder,
        row.lease_expires,
    )


def task_from_row(row: Row) -> TaskRow:
    return TaskRow(
        task_id=row["task_id"],
        owner=row["owner"],
        tool=row["tool"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        expires_at=row["expires_at"],
        status_message=row["status_message"],
        resume_hint=row["resume_hint"],
        result=None if row["result"] is None else json.loads(row["result"]),
        error=None if row["error"] is None else json.loads(row["error"]),
        job_id=row["job_id"],
        credits=row["credits"],
        lease_holder=row["lease_holder"],
        lease_expires=row["lease_expires"],
    )
