"""What a tool wrapper takes from the MCP request and gives back: the app context, progress, the result.

Progress goes to `notifications/progress` for an ordinary call and to the task's status message inside
a task (SEP-2663 carries no progress notifications on tasks). A delivered result becomes a
`CallToolResult` with its JSON as text, its structured content, and its attachments as content blocks
(resource links to copies, an inline preview).
"""

from __future__ import annotations

import base64
from typing import Any

import pydantic_core
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent, ToolAnnotations
from pydantic import BaseModel

from cutout_mcp.core.context import AppContext
from cutout_mcp.core.jobs.pace import ProgressCallback
from cutout_mcp.core.results import Attachment, Delivered, FileLink
from cutout_mcp.server.tasks import in_task, set_status

PAID_TOOL = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
"""Every paid tool: it changes the user's balance, is not safe to repeat, and reaches cutout.pro."""


def app_of(ctx: Context[AppContext, Any]) -> AppContext:
    return ctx.request_context.lifespan_context


def progress_sender(ctx: Context[AppContext, Any]) -> ProgressCallback:
    async def send(progress: float, total: float, message: str) -> None:
        if in_task():  # a task's request stream is gone: progress goes to tasks/get instead
            set_status(message)
        else:
            await ctx.report_progress(progress, total, message)

    return send


def call_result(delivered: Delivered[Any]) -> CallToolResult:
    result: BaseModel = delivered.result
    # One walk over the model: the JSON-mode dict is the structured content, and its JSON text is what
    # `model_dump_json(indent=2)` would give (same serializer, same key order).
    structured = result.model_dump(mode="json")
    text = TextContent(type="text", text=pydantic_core.to_json(structured, indent=2).decode())
    blocks = [_block(a) for a in delivered.attachments]
    return CallToolResult(content=[text, *blocks], structured_content=structured)


def _block(attachment: Attachment) -> ContentBlock:
    if isinstance(attachment, FileLink):
        return ResourceLink(
            uri=attachment.uri,
            name=attachment.name,
            description=attachment.description,
            mime_type=attachment.mime_type,
            size=attachment.size,
        )
    return ImageContent(data=base64.b64encode(attachment.jpeg).decode("ascii"), mime_type="image/jpeg")
