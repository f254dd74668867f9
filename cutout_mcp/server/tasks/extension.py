"""`TasksExtension`: the extension as the SDK sees it. It turns a declaring client's `generate_video`
call into a task and answers `tasks/get`, `tasks/update` and `tasks/cancel` from the shared storage;
the tasks themselves run in `runner`.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolRequestParams, EmptyResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from cutout_mcp.clock import Clock, SystemClock
from cutout_mcp.core.storage import Storage, TaskRow
from cutout_mcp.server.principal import current_principal
from cutout_mcp.server.tasks.current import TERMINAL, Opening
from cutout_mcp.server.tasks.params import TaskIdParams, UpdateTaskParams
from cutout_mcp.server.tasks.runner import Resume, TaskRunner, cancelled_message

EXTENSION_ID = "io.modelcontextprotocol/tasks"
TASK_TTL_MS = 3 * 3600 * 1000
"""How long a task handle lives from creation: the longest wait plus two hours to read the result."""
TASK_POLL_INTERVAL_MS = 5000
"""How often clients are asked to call tasks/get; answered from storage, it costs no upstream request."""
TASK_LEASE_SECONDS = 30.0
"""Default of CUTOUT_TASK_LEASE_SECONDS: how soon another process adopts the task of one that died."""

NOT_FOUND = "Failed to retrieve task: Task not found"


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
        self._principal = principal
        self._clock = clock or SystemClock()
        self._runner = TaskRunner(
            ttl_ms=ttl_ms, lease_seconds=lease_seconds, principal=principal, clock=self._clock, tick=tick
        )

    @asynccontextmanager
    async def running(self, storage: Storage, resume: Resume) -> AsyncIterator[None]:
        """Own the tasks' background work for the server's lifetime (enter from the lifespan)."""
        async with self._runner.running(storage, resume):
            yield

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
        if params.name not in self._task_tools or not _declared(ctx) or not self._runner.accepting:
            return await call_next(ctx)
        # The call starts in the background, but becomes a task only when the tool body calls
        # `begin_task()`, i.e. once its free checks and any spend confirmation are behind it. What ends the
        # call before that (an `input_required` question, a refusal, a bad argument) answers it directly.
        opening = Opening(self._runner, params.name)
        self._runner.start(opening, ctx, call_next)
        try:
            await opening.decided.wait()
        except anyio.get_cancelled_exc_class():
            if opening.record is None:  # the caller gave up before anything became a task
                opening.scope.cancel()
            raise
        if opening.record is not None:
            from cutout_mcp.server.tasks.wire import CreateTaskResult  # the wire shapes come with the first task

            return CreateTaskResult(**self._handle(opening.record.row))
        if opening.error is not None:
            raise opening.error
        return opening.result

    # --- tasks/get, tasks/update, tasks/cancel ---------------------------------------------------

    async def _lookup(self, ctx: ServerRequestContext[Any, Any], task_id: str) -> TaskRow:
        require_client_extension(ctx, EXTENSION_ID)  # -32021 for a client that did not declare it
        row = await self._runner.store().get_task(task_id)
        if (
            row is None
            or self._clock.now() >= row.expires_at
            or not secrets.compare_digest(row.owner, self._principal())
        ):
            raise MCPError(code=INVALID_PARAMS, message=NOT_FOUND)
        local = self._runner.record(task_id)
        if row.status == "working" and local is not None:
            return local.row  # this server runs it: its latest status may not be written yet
        return row

    def _handle(self, row: TaskRow) -> dict[str, Any]:
        """The task fields that the creating result and tasks/get share."""
        from cutout_mcp.server.tasks.wire import iso_time

        return {
            "task_id": row.task_id,
            "status": row.status,
            "status_message": row.status_message,
            "created_at": iso_time(row.created_at),
            "last_updated_at": iso_time(row.updated_at),
            "ttl_ms": self._ttl_ms,
            "poll_interval_ms": self._poll_interval_ms,
        }

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        from cutout_mcp.server.tasks.wire import GetTaskResult

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
        cancelled = row.with_(status="cancelled", status_message=cancelled_message(row), updated_at=self._clock.now())
        await self._runner.store().finish_task(
            cancelled, holder=None
        )  # whichever replica runs it stops at its next look
        local = self._runner.record(row.task_id)
        if local is not None:
            local.row = cancelled
            local.scope.cancel()
        return EmptyResult()


def _declared(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Did this very request declare the extension? (Never true on the 2025-11-25 wire.)"""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    capabilities = ctx.session.client_capabilities
    return bool(capabilities and capabilities.extensions and EXTENSION_ID in capabilities.extensions)
