"""Who is calling: the key that scopes jobs, ledger rows and task handles.

On stdio (and in process) there is one user, the one who started the
server, called `LOCAL`. On the HTTP transports with authentication, the
principal is the SDK's authenticated (client, issuer, subject) identity, so
one remote user never sees another's jobs. The name people know a caller
by (a token's name, an OAuth subject) is `core.principals.principal_name`.
"""

from __future__ import annotations

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import principal_components
from mcp.server.request_state import compact_json

from cutout_mcp.core.principals import LOCAL

__all__ = ["LOCAL", "current_principal"]


def current_principal() -> str:
    """The caller of the request being handled (reads the SDK's auth context variable)."""
    token = get_access_token()
    if token is None:
        return LOCAL
    return compact_json(principal_components(token))
