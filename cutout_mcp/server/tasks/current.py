"""What a tool running inside a task sees: whether it is one, and the status message it shows.

A call from a client that declared the extension runs in the background with an `Opening` in its
context; the tool body's `begin_task()` turns it into a task (its row written first), after which
`in_task()` is true and `set_status()` writes the task's `statusMessage`.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
from mcp.server.context import HandlerResult

from cutout_mcp.clock import Clock
from cutout_mcp.core.storage import TaskRow

TASK_MAX_WAIT_SECONDS = 3600.0
"""How long a task waits for its video job: far past the client's call limit, yet bounded."""
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


@dataclass(eq=False)
class TaskRecord:
    """A task this process runs: its row as last written, and what stops it."""

    row: TaskRow
    clock: Clock
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    changed: anyio.Event = field(default_factory=anyio.Event)
    persisting: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    """Ends the background writer of this record's status changes."""

    def update(self, **changes: Any) -> None:
        self.row = self.row.with_(**changes, updated_at=self.clock.now())
        self.changed.set()


class TaskOpener(Protocol):
    async def open_task(self, tool: str, scope: anyio.CancelScope) -> TaskRecord | None:
        """Write a new task's row and start recording its progress; None when it cannot be recorded."""
        ...


@dataclass
class Opening:
    """A task tool's call on its way to becoming a task; `decided` is set once it is one, or has ended."""

    opener: TaskOpener
    tool: str
    decided: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    record: TaskRecord | None = None
    result: HandlerResult = None
    error: Exception | None = None


_CURRENT: contextvars.ContextVar[TaskRecord | None] = contextvars.ContextVar("cutout_task", default=None)
_OPENING: contextvars.ContextVar[Opening | None] = contextvars.ContextVar("cutout_task_opening", default=None)


def enter_opening(opening: Opening) -> None:
    """The call running in this context may become a task (`begin_task`)."""
    _OPENING.set(opening)


def enter_task(record: TaskRecord) -> None:
    """The code running in this context runs as the task `record`."""
    _CURRENT.set(record)


async def begin_task() -> bool:
    """Called by a task tool's body once its checks and any spend confirmation passed: a call from a client
    that declared the extension becomes a task here, its row written before its handle goes back to the
    client. Returns `in_task()` (False also when the task could not be recorded: the call then goes on
    as an ordinary one)."""
    opening = _OPENING.get()
    if opening is not None and opening.record is None and not opening.decided.is_set():
        record = await opening.opener.open_task(opening.tool, opening.scope)
        if record is not None:
            opening.record = record
            _CURRENT.set(record)
            opening.decided.set()
    return in_task()


def in_task() -> bool:
    """True while a tool runs as a task: it may wait past the client's call limit."""
    return _CURRENT.get() is not None


def set_status(
    message: str, *, resume_hint: str | None = None, job_id: int | None = None, credits: int | None = None
) -> None:
    """Show `message` as the task's `statusMessage` (a no-op outside a task); once the tool knows its
    upstream job, `job_id` and `credits` let another replica finish the task if this process dies."""
    record = _CURRENT.get()
    if record is None or record.row.status in TERMINAL:
        return
    changes: dict[str, Any] = {"status_message": message}
    if resume_hint is not None:
        changes["resume_hint"] = resume_hint
    if job_id is not None:
        changes["job_id"] = job_id
    if credits is not None:
        changes["credits"] = credits
    record.update(**changes)
