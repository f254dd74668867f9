"""The one way this server builds an outbound httpx client (the API's and the downloads').

Both want the same things, so they are written once: the shared verifying TLS context
(`upstream.tls`), cutout-mcp's User-Agent, a connect timeout of at most 10 s, and every connection
slot allowed to stay alive, but only briefly. Idle connections are dropped after
`KEEPALIVE_SECONDS`: httpx's default (5 s) equals uvicorn's keep-alive timeout (Node's is 5 s too,
gunicorn's 2 s), so a request could go out on a connection the server was closing at that moment and
fail with no answer; a paid POST is then not retried (it may have been charged). With fewer slots
kept, a burst closed and reopened most connections (a TCP and TLS handshake each).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from cutout_mcp import __version__
from cutout_mcp.upstream.tls import shared_ssl_context

if TYPE_CHECKING:
    import httpx

KEEPALIVE_SECONDS = 1.5
"""How long an idle connection is kept for reuse: below every common server's keep-alive timeout."""
USER_AGENT = f"cutout-mcp/{__version__}"


def connection_limits(connections: int) -> httpx.Limits:
    import httpx  # imported when the first client is built, never at start-up

    return httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=KEEPALIVE_SECONDS
    )


def build_client(
    *,
    timeout: float,
    connections: int,
    transport: httpx.AsyncBaseTransport | None = None,
    headers: Mapping[str, str] | None = None,
    base_url: str = "",
    max_redirects: int = 0,
) -> httpx.AsyncClient:
    """An httpx client with the server's defaults; `max_redirects=0` follows none."""
    import httpx

    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
        limits=connection_limits(connections),
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        follow_redirects=max_redirects > 0,
        max_redirects=max_redirects or 20,
        verify=shared_ssl_context(),
        transport=transport,
    )
