"""Who is calling, and in which session: the keys that scope jobs, ledger rows, task handles and session caps.

On stdio (and in process) there is one user, the one who started the
server, called `LOCAL`. On the HTTP transports with authentication, the
principal is the SDK's authenticated (client, issuer, subject) identity, so
one remote user never sees another's jobs. The name people know a caller
by (a token's name, an OAuth subject) is `config.allowances.principal_name`.
"""

from __future__ import annotations

import uuid
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import principal_components
from mcp.server.mcpserver import Context
from mcp.server.request_state import compact_json

from cutout_mcp.core.context import AppContext
from cutout_mcp.core.storage.limits import session_key

LOCAL = "local"
SESSION_HEADER = "mcp-session-id"


def current_principal() -> str:
    """The caller of the request being handled (reads the SDK's auth context variable)."""
    token = get_access_token()
    if token is None:
        return LOCAL
    return compact_json(principal_components(token))


def current_session(ctx: Context[AppContext, Any]) -> str:
    """The key of the caller's MCP session, which `CUTOUT_SESSION_CREDITS` caps.

    - stdio (and in process): the server's one client connection, so one key per server run;
    - streamable HTTP with a session (a 2025-11-25 client): the `mcp-session-id` the transport issued and
      checked (its digest is kept, never the id); SSE: its `session_id`;
    - HTTP without a session (`--stateless`, or a 2026-07-28 client, whose requests each stand alone):
      this request alone, so a session cap limits one call; `--stateless` with a cap is refused at start.
    """
    request = ctx.request_context.request
    app = ctx.request_context.lifespan_context
    if request is None:
        return app.session
    headers = getattr(request, "headers", None)
    params = getattr(request, "query_params", None)
    transport_id = (headers.get(SESSION_HEADER) if headers is not None else None) or (
        params.get("session_id") if params is not None else None
    )
    return session_key(str(transport_id) if transport_id else f"request:{uuid.uuid4().hex}")
