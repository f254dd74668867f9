"""Running tasks durably: the background work, each status change written to the shared storage,
leases kept, the tasks of a process that died adopted, expired tasks forgotten.

`TaskRunner` owns a task group for the server's lifetime (`running()`); the extension (`extension`)
starts calls in it and answers `tasks/*` from what it records.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, ErrorData
from pydantic import BaseModel

from cutout_mcp.clock import Clock
from cutout_mcp.core.money.paid import PROCESS_ID
from cutout_mcp.core.storage import Storage, StorageError, TaskRow, TaskStatus
from cutout_mcp.server.tasks.current import TERMINAL, Opening, TaskRecord, enter_opening, enter_task

logger = logging.getLogger(__name__)

Resume = Callable[[TaskRow, TaskRecord], Awaitable[dict[str, Any]]]
"""Finishes an adopted task whose job id is known: returns the tool result (a CallToolResult dict)."""


class TaskRunner:
    """The tasks this process runs, and their rows in the shared storage."""

    def __init__(
        self,
        *,
        ttl_ms: int,
        lease_seconds: float,
        principal: Callable[[], str],
        clock: Clock,
        tick: Callable[[float], Awaitable[None]],
    ) -> None:
        self._ttl_ms = ttl_ms
        self._lease = lease_seconds
        self._principal = principal
        self._clock = clock
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

    @property
    def accepting(self) -> bool:
        """Running, with a storage to record tasks in."""
        return self._group is not None and self._storage is not None

    def start(self, opening: Opening, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> None:
        """Run the call in the background; it becomes a task when its body calls `begin_task()`."""
        assert self._group is not None
        self._group.start_soon(self._run, opening, ctx, call_next)

    def record(self, task_id: str) -> TaskRecord | None:
        """The task `task_id`, if this process runs it."""
        return self._local.get(task_id)

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

    async def _run(self, opening: Opening, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> None:
        enter_opening(opening)  # this background task runs in its own copy of the context
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
                await self._finish(record, "cancelled", message=cancelled_message(record.row))
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
        enter_task(record)  # this background task runs in its own copy of the context
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
                    await self._finish(record, "cancelled", message=cancelled_message(record.row))
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
                    kept = await self.store().save_task(row)
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
                await self.store().finish_task(record.row, holder=self.holder)
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
        storage, group = self.store(), self._group
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

    def store(self) -> Storage:
        if self._storage is None:
            raise RuntimeError("the tasks extension is not running (see TasksExtension.running)")
        return self._storage


def _payload(out: HandlerResult) -> dict[str, Any]:
    """A finished tool call as the `result` a completed task inlines."""
    payload: dict[str, Any] = (
        out.model_dump(by_alias=True, mode="json", exclude_none=True) if isinstance(out, BaseModel) else dict(out or {})
    )
    payload.pop("resultType", None)
    return payload


def cancelled_message(row: TaskRow) -> str:
    message = "Cancelled: the server stopped checking cutout.pro for this task."
    if row.resume_hint:
        message += f" {row.resume_hint}"
    return message
