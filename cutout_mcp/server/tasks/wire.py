"""The tasks extension's wire shapes (`mcp_types` only has the incompatible 2025-11-25 ones), imported with
the first task: start-up needs only the requests' parameters (`params`)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from mcp_types import Request, Result
from pydantic import BaseModel, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

from cutout_mcp.core.storage import TaskStatus
from cutout_mcp.server.tasks.params import TaskIdParams


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


class GetTaskRequest(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskIdParams
    name_param = "taskId"
    """SEP-2663: on streamable HTTP the Mcp-Name header carries the task id."""


class CancelTaskRequest(Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: TaskIdParams
    name_param = "taskId"


def iso_time(epoch: float) -> str:
    """A task timestamp as the wire writes it: UTC, milliseconds, `Z`."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
