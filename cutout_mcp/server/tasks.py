"""The `io.modelcontextprotocol/tasks` extension (SEP-2663): `generate_video` as a durable task.

A client that declares the extension on its request gets a task handle at
once (`resultType: "task"`, `taskId`, `status`, `pollIntervalMs`, `ttlMs`)
instead of holding a tool call open for minutes; it polls `tasks/get` until
the task is `completed`, and then finds the ordinary tool result inlined.
Every other client (legacy 2025-11-25 connections, modern clients that did
not opt in) gets the ordinary bounded wait, because the SEP forbids sending a
task to a client that did not ask on that very request.

Decisions:
- The tool runs in a task group owned by the server lifespan (`running()`),
  not by the request, so it outlives the client's ~60 s call limit. The
  task is created only when the tool body calls `begin_task()`, after its
  free checks and any spend confirmation (`server.spend`): the 2026-07-28
  confirmation question rides the `tools/call` result itself, so it is
  answered directly, as is a refusal or a bad argument, and no task exists
  for a call that never spent anything. Inside a
  task the tool waits until the job finishes, bounded by
  `TASK_MAX_WAIT_SECONDS`, and reports progress through the task's
  `statusMessage` (SEP-2663 does not carry progress notifications on tasks).
  Every status message names the upstream job id, so the job is never lost.
- Durable: the task's row is written to the shared storage (`core.storage`)
  before its handle is returned, and each status change (with the job id and
  what the submit cost) is written as it happens. `tasks/get` and
  `tasks/cancel` read and write that row, so any replica (or the same server
  after a restart) answers them.
- Leases: the process running a task holds a lease on its row, renewed every
  third of `CUTOUT_TASK_LEASE_SECONDS`. When a process dies, another one (or
  the restarted server) takes the expired lease over (`maintain`), and
  finishes watching the job by its id; a task whose paid submit had not
  recorded a job id yet is marked failed with a message that it may have
  been charged, and is never submitted again.
- `tasks/cancel` stops the server's polling of cutout.pro (at once on the
  replica that runs the task; at that replica's next lease renewal when
  another replica received the cancel). The upstream job cannot be cancelled
  and its credits are spent; the cancelled task's message says so and names
  the job id to resume with `get_video_result`.
- Task ids carry 192 bits from `secrets`, live `TASK_TTL_MS`, and are bound to
  the caller (`principal.current_principal()`). Every `tasks/*` call checks
  the binding; another caller's task answers exactly like an unknown one
  (-32602 "Task not found"), so its existence is never confirmed.
"""

from __future__ import annotations

import contextvars
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import anyio
import anyio.abc
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    CallToolRequestParams,
    EmptyResult,
    ErrorData,
    Request,
    RequestParams,
    Result,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

from cutout_mcp.clock import Clock, SystemClock
from cutout_mcp.core.paid import PROCESS_ID
from cutout_mcp.core.storage import Storage, StorageError, TaskRow, TaskStatus
from cutout_mcp.server.principal import current_principal

logger = logging.getLogger(__name__)

EXTENSION_ID = "io.modelcontextprotocol/tasks"
TASK_MAX_WAIT_SECONDS = 3600.0
"""How long a task waits for its video job: far past the client's call limit, yet bounded."""
TASK_TTL_MS = 3 * 3600 * 1000
"""How long a task handle lives from creation: the longest wait plus two hours to read the result."""
TASK_POLL_INTERVAL_MS = 5000
"""How often clients are asked to call tasks/get; answered from storage, it costs no upstream request."""
TASK_LEASE_SECONDS = 30.0
"""Default of CUTOUT_TASK_LEASE_SECONDS: how soon another process adopts the task of one that died."""

TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
NOT_FOUND = "Failed to retrieve task: Task not found"


# --- wire shapes (mcp_types only has the incompatible 2025-11-25 ones) -----------------


class _KeepTtlMs(BaseModel):
    """`ttlMs` is required but nullable on the wire, and the SDK dumps with exclude_none."""

    ttl_ms: int | None = None

    @model_serializer(mode="wrap")
    def _keep(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        data.setdefault("ttlMs" if info.by_alias else "ttl_ms", self.ttl_ms)
        return data


class _TaskFields(_KeepTtlMs, Result):
    """The task's fields, shared by the creating result and `tasks/get`."""

    task_id: str
    status: TaskStatus
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None


class CreateTaskResult(_TaskFields):
    """The flat task handle a `tools/call` answers with (`resultType: "task"`)."""

    result_type: Literal["task"] = "task"


class GetTaskResult(_TaskFields):
    """`tasks/get`: the task as it stands, with the tool result once completed."""

    result_type: str = "complete"
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class TaskIdParams(RequestParams):
    task_id: str


class UpdateTaskParams(RequestParams):
    task_id: str
    input_responses: dict[str, Any] = Field(default_factory=dict)


class GetTaskRequest(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskIdParams
    name_param = "taskId"
    """SEP-2663: on streamable HTTP the Mcp-Name header carries the task id."""


class CancelTaskRequest(Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: TaskIdParams
    name_param = "taskId"


# --- what a tool running inside a task sees --------------------------------------------


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


_CURRENT: contextvars.ContextVar[TaskRecord | None] = contextvars.ContextVar("cutout_task", default=None)


@dataclass
class _Opening:
    """A task tool's call on its way to becoming a task; `decided` is set once it is one, or has ended."""

    extension: TasksExtension
    tool: str
    decided: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    record: TaskRecord | None = None
    result: HandlerResult = None
    error: Exception | None = None


_OPENING: contextvars.ContextVar[_Opening | None] = contextvars.ContextVar("cutout_task_opening", default=None)


async def begin_task() -> bool:
    """Called by a task tool's body once its checks and any spend confirmation passed: a call from a client
    that declared the extension becomes a task here, its row written before its handle goes back to the
    client. Returns `in_task()` (False also when the task could not be recorded: the call then goes on
    as an ordinary one)."""
    opening = _OPENING.get()
    if opening is not None and opening.record is None and not opening.decided.is_set():
        record = await opening.extension.open_task(opening.tool, opening.scope)
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


Resume = Callable[[TaskRow, TaskRecord], Awaitable[dict[str, Any]]]
"""Finishes an adopted task whose job id is known: returns the tool result (a CallToolResult dict)."""


# --- the extension ---------------------------------------------------------------------


class TasksExtension(Extension):
    """Runs the configured tools as tasks for clients that declared the extension."""

    identifier = EXTENSION_ID

    def __init__(
        self,
        *,
        task_tools: frozenset[str],
        ttl_ms: int = TASK_TTL_MS,
        poll_interval_ms: int = TASK_POLL_INTERVAL_MS,
        lease_seconds: float = TASK_LEASE_SECONDS,
        principal: Callable[[], str] = current_principal,
        clock: Clock | None = None,
        tick: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._task_tools = task_tools
        self._ttl_ms = ttl_ms
        self._poll_interval_ms = poll_interval_ms
        self._lease = lease_seconds
        self._principal = principal
        self._clock = clock or SystemClock()
        self._tick = tick
        """Sleeps between two maintenance passes (real time: the leases are other processes' business)."""
        self.holder = f"{PROCESS_ID}/{secrets.token_hex(4)}"
        """Names this server in task leases."""
        self._local: dict[str, TaskRecord] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._storage: Storage | None = None
        self._resume: Resume | None = None

    @asynccontextmanager
    async def running(self, storage: Storage, resume: Resume) -> AsyncIterator[None]:
        """Own the tasks' background work for the server's lifetime (enter from the lifespan)."""
        self._storage, self._resume = storage, resume
        async with anyio.create_task_group() as group:
            self._group = group
            try:
                await self.maintain()  # a restarted server adopts what its previous run left at once
                group.start_soon(self._maintain_forever)
                yield
            finally:
                self._group = None
                unfinished = list(self._local)
                group.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await self._hand_over(storage, unfinished)
        self._storage = self._resume = None

    async def _hand_over(self, storage: Storage, working: list[str]) -> None:
        """On shutdown, end this server's leases now, so another process adopts its tasks at once."""
        if not working:
            return
        try:
            await storage.renew_task_leases(self.holder, working, self._clock.now())
            logger.info("Handed %d unfinished task(s) over to the other server processes", len(working))
        except StorageError:
            logger.warning("Could not hand tasks over; they are adopted when their leases run out", exc_info=True)

    def methods(self) -> Sequence[MethodBinding]:
        modern = frozenset(MODERN_PROTOCOL_VERSIONS)  # the extension is not defined on 2025-11-25
        return [
            MethodBinding("tasks/get", TaskIdParams, self._get, protocol_versions=modern),
            MethodBinding("tasks/update", UpdateTaskParams, self._update, protocol_versions=modern),
            MethodBinding("tasks/cancel", TaskIdParams, self._cancel, protocol_versions=modern),
        ]

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        storage = self._storage
        if params.name not in self._task_tools or not _declared(ctx) or self._group is None or storage is None:
            return await call_next(ctx)
        # The call starts in the background, but becomes a task only when the tool body calls
        # `begin_task()`, i.e. once its free checks and any spend confirmation are behind it. What ends the
        # call before that (an `input_required` question, a refusal, a bad argument) answers it directly.
        opening = _Opening(self, params.name)
        self._group.start_soon(self._run, opening, ctx, call_next)
        try:
            await opening.decided.wait()
        except anyio.get_cancelled_exc_class():
            if opening.record is None:  # the caller gave up before anything became a task
                opening.scope.cancel()
            raise
        if opening.record is not None:
            return CreateTaskResult(**self._handle(opening.record.row))
        if opening.error is not None:
            raise opening.error
        return opening.result

    async def open_task(self, tool: str, scope: anyio.CancelScope) -> TaskRecord | None:
        """Write a new task's row (resolvable by any replica before its handle is returned, SEP-2663) and
        start recording its progress; None when the storage cannot take it."""
        storage, group = self._storage, self._group
        if storage is None or group is None:
            return None
        now = self._clock.now()
        row = TaskRow(
            task_id=f"task_{secrets.token_urlsafe(24)}",
            owner=self._principal(),
            tool=tool,
            status="working",
            created_at=now,
            updated_at=now,
            expires_at=now + self._ttl_ms / 1000,
            status_message=f"{tool} is starting.",
            lease_holder=self.holder,
            lease_expires=now + self._lease,
        )
        try:
            await storage.create_task(row)
        except StorageError:
            logger.warning("Cannot record a task, so %s runs as an ordinary call", tool, exc_info=True)
            return None
        record = TaskRecord(row, self._clock, scope=scope)
        self._local[row.task_id] = record
        group.start_soon(self._persist, record)
        logger.info("Started task %s… for %s", row.task_id[:10], tool)
        return record

    async def _run(self, opening: _Opening, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> None:
        _OPENING.set(opening)  # this background task runs in its own copy of the context
        out: HandlerResult = None
        error: Exception | None = None
        with opening.scope:
            try:
                out = await call_next(ctx)
            except Exception as exc:
                error = exc
        record = opening.record
        if record is None:  # ended before it became a task: the interceptor answers with this
            opening.result, opening.error = out, error
            opening.decided.set()
            return
        try:
            if opening.scope.cancelled_caught:
                await self._finish(record, "cancelled", message=_cancelled_message(record.row))
            elif isinstance(error, MCPError) or isinstance(out, ErrorData):
                data = error.error if isinstance(error, MCPError) else out
                assert isinstance(data, ErrorData)
                error_data = data.model_dump(by_alias=True, mode="json", exclude_none=True)
                await self._finish(record, "failed", error=error_data, message=data.message)
            elif error is not None:
                logger.error("Task for %s failed unexpectedly", record.row.tool, exc_info=error)
                message = f"{record.row.tool} failed unexpectedly. {record.row.resume_hint or ''}".strip()
                await self._finish(
                    record, "failed", error={"code": INTERNAL_ERROR, "message": message}, message=message
                )
            else:
                await self._finish(record, "completed", result=_payload(out))  # an isError result is "completed"
        finally:
            record.persisting.cancel()
            self._local.pop(record.row.task_id, None)

    async def _adopt(self, row: TaskRow) -> None:
        """Finish a task whose process died: watch its job again, or fail it if its job id is unknown."""
        record = TaskRecord(row, self._clock)
        self._local[row.task_id] = record
        if row.job_id is None:
            message = (
                f"The server process running this {row.tool} task stopped before cutout.pro's job id was recorded. "
                "Its video may have been submitted and charged: check list_video_jobs before trying again. "
                "It was not submitted again."
            )
            await self._finish(record, "failed", error={"code": INTERNAL_ERROR, "message": message}, message=message)
            return
        logger.info("Adopted task %s… (video job %s) from a stopped server process", row.task_id[:10], row.job_id)
        resume = self._resume
        assert resume is not None
        await self._drive(record, lambda: resume(record.row, record))

    async def _drive(self, record: TaskRecord, work: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        """Run `work` as the task, writing its progress as it goes and its outcome at the end."""
        _CURRENT.set(record)  # this background task runs in its own copy of the context
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._persist, record)
                with record.scope:
                    try:
                        result = await work()
                        await self._finish(record, "completed", result=result)  # an isError result is "completed"
                    except MCPError as exc:
                        error = exc.error.model_dump(by_alias=True, mode="json", exclude_none=True)
                        await self._finish(record, "failed", error=error, message=exc.error.message)
                    except Exception:
                        logger.exception("Task for %s failed unexpectedly", record.row.tool)
                        message = f"{record.row.tool} failed unexpectedly. {record.row.resume_hint or ''}".strip()
                        error = {"code": INTERNAL_ERROR, "message": message}
                        await self._finish(record, "failed", error=error, message=message)
                if record.scope.cancelled_caught:
                    await self._finish(record, "cancelled", message=_cancelled_message(record.row))
                group.cancel_scope.cancel()
        finally:
            self._local.pop(record.row.task_id, None)

    async def _persist(self, record: TaskRecord) -> None:
        """Write each status change as it happens (the latest wins); stop the task if it was taken away."""
        with record.persisting:
            await self._persist_changes(record)

    async def _persist_changes(self, record: TaskRecord) -> None:
        while True:
            await record.changed.wait()
            record.changed = anyio.Event()
            row = record.row.with_(lease_expires=self._clock.now() + self._lease)
            try:
                with anyio.CancelScope(shield=True):
                    kept = await self._store().save_task(row)
            except StorageError:
                logger.warning("Could not record the progress of task %s…", row.task_id[:10], exc_info=True)
                continue
            if not kept:  # cancelled by another replica (or adopted after a lapse): stop here
                record.scope.cancel()
                return

    async def _finish(
        self,
        record: TaskRecord,
        status: TaskStatus,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> None:
        if record.row.status in TERMINAL:
            return
        if message is None and status == "completed":
            message = f"{record.row.tool} finished; the result is in this task."
        record.row = record.row.with_(
            status=status,
            result=result,
            error=error,
            status_message=message or record.row.status_message,
            updated_at=self._clock.now(),
        )
        try:
            with anyio.CancelScope(shield=True):
                await self._store().finish_task(record.row, holder=self.holder)
        except StorageError:
            logger.exception("Could not record the end of task %s…", record.row.task_id[:10])

    # --- keeping leases, adopting orphans, forgetting expired tasks ------------------------------

    async def _maintain_forever(self) -> None:
        while True:
            await self._tick(self._lease / 3)
            try:
                await self.maintain()
            except Exception:  # the storage may be down for a moment: never end the server for it
                logger.warning("Task maintenance failed; retrying at the next pass", exc_info=True)

    async def maintain(self) -> None:
        """One pass: renew this server's leases, stop tasks taken away, forget expired ones, adopt orphans."""
        storage, group = self._store(), self._group
        now = self._clock.now()
        working = [task_id for task_id, record in self._local.items() if record.row.status not in TERMINAL]
        held = await storage.renew_task_leases(self.holder, working, now + self._lease)
        for task_id in working:
            record = self._local.get(task_id)
            if record is not None and (task_id not in held or now >= record.row.expires_at):
                record.scope.cancel()  # cancelled elsewhere, expired, or adopted after this server lapsed
        await storage.delete_expired_tasks(now)
        if group is None:
            return
        for row in await storage.adopt_tasks(self.holder, now, now + self._lease):
            group.start_soon(self._adopt, row)

    def _store(self) -> Storage:
        if self._storage is None:
            raise RuntimeError("the tasks extension is not running (see TasksExtension.running)")
        return self._storage

    # --- tasks/get, tasks/update, tasks/cancel ---------------------------------------------------

    async def _lookup(self, ctx: ServerRequestContext[Any, Any], task_id: str) -> TaskRow:
        require_client_extension(ctx, EXTENSION_ID)  # -32021 for a client that did not declare it
        row = await self._store().get_task(task_id)
        if (
            row is None
            or self._clock.now() >= row.expires_at
            or not secrets.compare_digest(row.owner, self._principal())
        ):
            raise MCPError(code=INVALID_PARAMS, message=NOT_FOUND)
        local = self._local.get(task_id)
        if row.status == "working" and local is not None:
            return local.row  # this server runs it: its latest status may not be written yet
        return row

    def _handle(self, row: TaskRow) -> dict[str, Any]:
        """The task fields that the creating result and tasks/get share."""
        return {
            "task_id": row.task_id,
            "status": row.status,
            "status_message": row.status_message,
            "created_at": _iso(row.created_at),
            "last_updated_at": _iso(row.updated_at),
            "ttl_ms": self._ttl_ms,
            "poll_interval_ms": self._poll_interval_ms,
        }

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        row = await self._lookup(ctx, params.task_id)
        return GetTaskResult(
            **self._handle(row),
            result=row.result if row.status == "completed" else None,
            error=row.error if row.status == "failed" else None,
        )

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> HandlerResult:
        await self._lookup(ctx, params.task_id)
        return EmptyResult()  # these tasks never ask for input, so there is nothing to update

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        row = await self._lookup(ctx, params.task_id)
        if row.status in TERMINAL:
            return EmptyResult()
        cancelled = row.with_(status="cancelled", status_message=_cancelled_message(row), updated_at=self._clock.now())
        await self._store().finish_task(cancelled, holder=None)  # whichever replica runs it stops at its next look
        local = self._local.get(row.task_id)
        if local is not None:
            local.row = cancelled
            local.scope.cancel()
        return EmptyResult()


def _payload(out: HandlerResult) -> dict[str, Any]:
    """A finished tool call as the `result` a completed task inlines."""
    payload: dict[str, Any] = (
        out.model_dump(by_alias=True, mode="json", exclude_none=True) if isinstance(out, BaseModel) else dict(out or {})
    )
    payload.pop("resultType", None)
    return payload


def _cancelled_message(row: TaskRow) -> str:
    message = "Cancelled: the server stopped checking cutout.pro for this task."
    if row.resume_hint:
        message += f" {row.resume_hint}"
    return message


def _declared(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Did this very request declare the extension? (Never true on the 2025-11-25 wire.)"""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    capabilities = ctx.session.client_capabilities
    return bool(capabilities and capabilities.extensions and EXTENSION_ID in capabilities.extensions)
