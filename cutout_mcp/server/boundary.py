"""The one place a failure becomes what the caller sees.

- A `CutoutMcpError` raised anywhere below a tool is an expected failure: it becomes a tool error
  (`isError: true`) with its message, the exception kept as the cause for a log reader.
- The SDK's pydantic report for arguments that break the input schema becomes one sentence per
  argument (`server.arguments`).
- Anything else is a bug: the SDK logs it with its traceback and the caller sees only
  "Error executing tool <name>".
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from pydantic import ValidationError

from cutout_mcp.core.context import AppContext
from cutout_mcp.core.drain import Drain, StoppingError
from cutout_mcp.errors import CutoutMcpError
from cutout_mcp.server.arguments import describe_invalid_arguments


class CutoutServer(MCPServer[AppContext]):
    """MCPServer whose expected failures and argument errors read as sentences a person can act on.

    Every tool call is counted in `drain`, so a stopping server answers the calls in flight first and
    refuses new ones (`core.drain`).
    """

    drain: Drain = Drain()
    """Replaced per server by `build_server` (the class attribute only serves a bare instance)."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[AppContext, Any] | None = None
    ) -> Any:
        try:
            with self.drain.call():
                return await super().call_tool(name, arguments, context)
        except StoppingError as exc:
            raise ToolError(str(exc)) from exc
        except UnexpectedToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, CutoutMcpError):
                raise ToolError(f"{exc}: {cause}") from cause
            raise
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(describe_invalid_arguments(name, cause)) from cause
            raise
