"""The one place a failure becomes what the caller sees.

- A `CutoutMcpError` raised anywhere below a tool is an expected failure: it becomes a tool error
  (`isError: true`) with its message, the exception kept as the cause for a log reader.
- The SDK's pydantic report for arguments that break the input schema becomes one sentence per
  argument (`server.arguments`).
- Anything else is a bug: the SDK logs it with its traceback and the caller sees only
  "Error executing tool <name>".

A paid tool's call refused before anything was sent is counted here, once, by reason
(`cutout_paid_calls_refused_total`): an error with a `limit` attribute (allowance, session, rate)
counts under that name, any other under the first class of `REFUSAL_REASONS` it is an instance of.
The call's tool, principal and job id name its log records (`logs.call_fields`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from pydantic import ValidationError

from cutout_mcp.core.context import AppContext
from cutout_mcp.core.inputs.image_rules import ImageRefusedError
from cutout_mcp.core.inputs.image_sources import StagingUnavailableError
from cutout_mcp.core.inputs.input_paths import PathRefusedError
from cutout_mcp.core.inputs.validation import InvalidArgumentError
from cutout_mcp.core.money.consent import SpendNotConfirmedError
from cutout_mcp.core.money.drain import Drain, StoppingError
from cutout_mcp.core.money.paid import GuardBusyError, LedgerUnavailableError, UnrecordedChargeError
from cutout_mcp.core.storage import BudgetExceededError
from cutout_mcp.errors import CutoutMcpError
from cutout_mcp.logs import call_fields
from cutout_mcp.server.arguments import describe_invalid_arguments
from cutout_mcp.server.ops.health import Readiness
from cutout_mcp.server.principal import current_principal
from cutout_mcp.telemetry import NO_METRICS, Metrics
from cutout_mcp.upstream.errors import MissingApiKeyError

PAID_TOOLS = frozenset({"generate_video", "edit_image"})
REFUSAL_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (BudgetExceededError, "budget"),
    (SpendNotConfirmedError, "confirmation"),
    (PathRefusedError, "input_path"),
    (ImageRefusedError, "preflight"),
    (StagingUnavailableError, "staging"),
    (InvalidArgumentError, "invalid_argument"),
    (ValidationError, "invalid_argument"),
    (UnrecordedChargeError, "unrecorded_charge"),
    (GuardBusyError, "duplicate_in_flight"),
    (LedgerUnavailableError, "ledger"),
    (StoppingError, "stopping"),
    (MissingApiKeyError, "no_api_key"),
)
"""Why a paid call was refused before it was sent, by error class: a subclass before its base."""
LIMITS = frozenset({"allowance", "session", "rate"})
"""The `limit` attribute values of the spending-limit refusals, each its own reason."""


def refusal_reason(exc: BaseException) -> str | None:
    """The reason a refusal is counted under, or None when `exc` is no refusal (the call may have been sent)."""
    limit = getattr(exc, "limit", None)
    if isinstance(limit, str) and limit in LIMITS:
        return limit
    return next((reason for kind, reason in REFUSAL_REASONS if isinstance(exc, kind)), None)


class CutoutServer(MCPServer[AppContext]):
    """MCPServer whose expected failures and argument errors read as sentences a person can act on.

    Every tool call is counted in `drain`, so a stopping server answers the calls in flight first and
    refuses new ones (`core.money.drain`).
    """

    drain: Drain = Drain()
    """Replaced per server by `build_server` (the class attributes only serve a bare instance)."""
    metrics: Metrics = NO_METRICS
    readiness: Readiness | None = None
    principal: Callable[[], str] = staticmethod(current_principal)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[AppContext, Any] | None = None
    ) -> Any:
        job_id = str(arguments.get("id", "")) if isinstance(arguments, dict) else ""
        with call_fields(tool=name, principal=self.principal(), job_id=int(job_id) if job_id.isdigit() else None):
            try:
                with self.drain.call():
                    return await super().call_tool(name, arguments, context)
            except StoppingError as exc:
                self._count_refusal(name, exc)
                raise ToolError(str(exc)) from exc
            except UnexpectedToolError as exc:
                cause = exc.__cause__
                if isinstance(cause, CutoutMcpError):
                    self._count_refusal(name, cause)
                    raise ToolError(f"{exc}: {cause}") from cause
                raise
            except ToolError as exc:
                cause = exc.__cause__
                if isinstance(cause, ValidationError):
                    self._count_refusal(name, cause)
                    raise ToolError(describe_invalid_arguments(name, cause)) from cause
                raise

    def _count_refusal(self, tool: str, exc: BaseException) -> None:
        reason = refusal_reason(exc) if tool in PAID_TOOLS else None
        if reason is not None:
            self.metrics.refused(reason)
