"""The `io.modelcontextprotocol/tasks` extension (SEP-2663): `generate_video` as a task.

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
- `tasks/cancel` stops the server's polling of cutout.pro. The upstream job
  cannot be cancelled and its credits are spent; the cancelled task's message
  says so and names the job id to resume with `get_video_result`.
- Task ids carry 192 bits from `secrets`, live `TASK_TTL_MS`, and are bound to
  the caller (`principal.current_principal()`). Every `tasks/*` call checks
  the binding; another caller's task answers exactly like an unknown one
  (-32602 "Task not found"), so its existence is never confirmed.
- Tasks live in memory, per server process: a restart loses the handle, but
  never the job, whose id is in every status message the client has read.
"""

from __future__ import annotations

import contextvars
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import anyio
import anyio.abc
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolRequestParams, EmptyResult, ErrorData, Request, RequestParams, Result
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

from cutout_mcp.clock import Clock, SystemClock, utc
from cutout_mcp.server.principal import current_principal

logger = logging.getLogger(__name__)

EXTENSION_ID = "io.modelcontextprotocol/tasks"
TASK_MAX_WAIT_SECONDS = 3600.0
"""How long a task waits for its video job: far past the client's call limit, yet bounded."""
TASK_TTL_MS = 3 * 3600 * 1000
"""How long a task handle lives from creation: the longest wait plus two hours to read the result."""
TASK_POLL_INTERVAL_MS = 5000
"""How often clients are asked to call tasks/get; answered from memory, it costs no upstream request."""

TaskStatus = Literal["working", "input_required", "completed", "failed", "cancelled"]
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


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class TaskRecord:
    task_id: str
    owner: str
    tool: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    status: TaskStatus = "working"
    status_message: str | None = None
    resume_hint: str | None = None
    """What the caller can do to reach the work if this task ends early (names the job id)."""
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    clock: Clock = field(default_factory=SystemClock, repr=False)


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


def begin_task() -> bool:
    """Called by a task tool's body once its checks and any spend confirmation passed: a call from a client
    that declared the extension becomes a task here (its handle goes back to the client). Returns
    `in_task()`."""
    opening = _OPENING.get()
    if opening is not None and opening.record is None:
        opening.record = opening.extension._open(opening)
        _CURRENT.set(opening.record)
        opening.decided.set()
    return in_task()


def in_task() -> bool:
    """True while a tool runs as a task: it may wait past the client's call limit."""
    return _CURRENT.get() is not None


def set_status(message: str, *, resume_hint: str | None = None) -> None:
    """Show `message` as the task's `statusMessage` (a no-op outside a task)."""
    record = _CURRENT.get()
    if record is None or record.status in TERMINAL:
        return
    record.status_message = message
    if resume_hint is not None:
        record.resume_hint = resume_hint
    record.updated_at = utc(record.clock)


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
        principal: Callable[[], str] = current_principal,
        clock: Clock | None = None,
    ) -> None:
        self._task_tools = task_tools
        self._ttl_ms = ttl_ms
        self._poll_interval_ms = poll_interval_ms
        self._principal = principal
        self._clock = clock or SystemClock()
        self._tasks: dict[str, TaskRecord] = {}
        self._group: anyio.abc.TaskGroup | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Own the tasks' background work for the server's lifetime (enter from the lifespan)."""
        async with anyio.create_task_group() as group:
            self._group = group
            try:
                yield
            finally:
                self._group = None
                group.cancel_scope.cancel()

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
        if params.name not in self._task_tools or not _declared(ctx) or self._group is None:
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
            return CreateTaskResult(**self._handle(opening.record))
        if opening.error is not None:
            raise opening.error
        return opening.result

    def _open(self, opening: _Opening) -> TaskRecord:
        self._sweep()
        now = utc(self._clock)
        record = TaskRecord(
            task_id=f"task_{secrets.token_urlsafe(24)}",
            owner=self._principal(),
            tool=opening.tool,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(milliseconds=self._ttl_ms),
            status_message=f"{opening.tool} is starting.",
            scope=opening.scope,
            clock=self._clock,
        )
        self._tasks[record.task_id] = record  # resolvable before the handle is returned (SEP-2663)
        logger.info("Started task %s… for %s", record.task_id[:10], opening.tool)
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
        if opening.scope.cancelled_caught:
            self._finish(record, "cancelled", message=_cancelled_message(record))
        elif isinstance(error, MCPError) or isinstance(out, ErrorData):
            data = error.error if isinstance(error, MCPError) else out
            assert isinstance(data, ErrorData)
            error_data = data.model_dump(by_alias=True, mode="json", exclude_none=True)
            self._finish(record, "failed", error=error_data, message=data.message)
        elif error is not None:
            logger.error("Task for %s failed unexpectedly", record.tool, exc_info=error)
            message = f"{record.tool} failed unexpectedly. {record.resume_hint or ''}".strip()
            self._finish(record, "failed", error={"code": -32603, "message": message}, message=message)
        else:
            payload: dict[str, Any] = (
                out.model_dump(by_alias=True, mode="json", exclude_none=True)
                if isinstance(out, BaseModel)
                else dict(out or {})
            )
            payload.pop("resultType", None)
            self._finish(record, "completed", result=payload)  # an isError result is still "completed"

    def _finish(
        self,
        record: TaskRecord,
        status: TaskStatus,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> None:
        if record.status in TERMINAL:
            return
        record.status, record.result, record.error = status, result, error
        if message is not None:
            record.status_message = message
        elif status == "completed":
            record.status_message = f"{record.tool} finished; the result is in this task."
        record.updated_at = utc(self._clock)

    def _sweep(self) -> None:
        """Forget expired tasks (cancelling any still running), so memory stays bounded."""
        now = utc(self._clock)
        for task_id, record in list(self._tasks.items()):
            if now >= record.expires_at:
                record.scope.cancel()
                del self._tasks[task_id]

    def _lookup(self, ctx: ServerRequestContext[Any, Any], task_id: str) -> TaskRecord:
        require_client_extension(ctx, EXTENSION_ID)  # -32021 for a client that did not declare it
        self._sweep()
        record = self._tasks.get(task_id)
        if record is None or not secrets.compare_digest(record.owner, self._principal()):
            raise MCPError(code=INVALID_PARAMS, message=NOT_FOUND)
        return record

    def _handle(self, record: TaskRecord) -> dict[str, Any]:
        """The task fields that the creating result and tasks/get share."""
        return {
            "task_id": record.task_id,
            "status": record.status,
            "status_message": record.status_message,
            "created_at": _iso(record.created_at),
            "last_updated_at": _iso(record.updated_at),
            "ttl_ms": self._ttl_ms,
            "poll_interval_ms": self._poll_interval_ms,
        }

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        record = self._lookup(ctx, params.task_id)
        return GetTaskResult(
            **self._handle(record),
            result=record.result if record.status == "completed" else None,
            error=record.error if record.status == "failed" else None,
        )

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> HandlerResult:
        self._lookup(ctx, params.task_id)
        return EmptyResult()  # these tasks never ask for input, so there is nothing to update

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        record = self._lookup(ctx, params.task_id)
        record.scope.cancel()
        return EmptyResult()


def _cancelled_message(record: TaskRecord) -> str:
    message = "Cancelled: the server stopped checking cutout.pro for this task."
    if record.resume_hint:
        message += f" {record.resume_hint}"
    return message


def _declared(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Did this very request declare the extension? (Never true on the 2025-11-25 wire.)"""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    capabilities = ctx.session.client_capabilities
    return bool(capabilities and capabilities.extensions and EXTENSION_ID in capabilities.extensions)
