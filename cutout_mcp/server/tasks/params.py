"""The `tasks/*` requests' parameters: all of the wire shapes that start-up needs (the extension binds its
methods to them); the results and requests in `wire` are imported with the first task."""

from __future__ import annotations

from typing import Any

from mcp_types import RequestParams
from pydantic import Field


class TaskIdParams(RequestParams):
    task_id: str


class UpdateTaskParams(RequestParams):
    task_id: str
    input_responses: dict[str, Any] = Field(default_factory=dict)
