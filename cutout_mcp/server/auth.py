"""Bearer-token authentication for the HTTP transports.

Whoever reaches an HTTP endpoint spends the operator's credits, so:

- `CUTOUT_MCP_TOKEN` (or `CUTOUT_MCP_TOKEN_FILE`) holds one or more tokens,
  comma- or line-separated, each `name:token` or a bare `token`. The name is
  the caller's principal (`principal.current_principal()`), so jobs are
  scoped per user; bare tokens are named `token-1`, `token-2`, ...
- Tokens are checked by the SDK's bearer middleware through
  `StaticTokenVerifier`, which compares in constant time
  (`hmac.compare_digest`) against every configured token. A request without a
  valid token gets 401 with `WWW-Authenticate: Bearer ...` from the SDK.
- Binding a non-loopback address without a token is refused at start-up
  (`missing_authentication` names what to set; the CLI lists it with every
  other missing requirement in one message).
- Instead of static tokens, OAuth resource-server mode (`oauth.py`) checks
  tokens from an authorization server by introspection; the two are mutually
  exclusive.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl, SecretStr

from cutout_mcp.config import ConfigError, Settings
from cutout_mcp.server import oauth

MIN_TOKEN_CHARS = 16
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_UNUSED_ISSUER = AnyHttpUrl("http://127.0.0.1")
"""The SDK's AuthSettings requires an issuer; static tokens have none and publish no metadata."""
_MAKE_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"  # noqa: S105 - a command, not a secret


@dataclass(frozen=True)
class NamedToken:
    name: str
    secret: bytes


def parse_tokens(entries: Sequence[SecretStr]) -> list[NamedToken]:
    """`name:token` or bare `token` entries, validated; messages never echo a token."""
    tokens: list[NamedToken] = []
    for index, entry in enumerate(entries, start=1):
        text = entry.get_secret_value().strip()
        name, sep, secret = text.partition(":")
        if not sep or not _NAME.match(name):
            name, secret = f"token-{index}", text
        if len(secret) < MIN_TOKEN_CHARS:
            raise ConfigError(
                f"CUTOUT_MCP_TOKEN: the token for {name!r} is shorter than {MIN_TOKEN_CHARS} characters; "
                f"make one with {_MAKE_TOKEN}"
            )
        tokens.append(NamedToken(name, secret.encode()))
    names = [t.name for t in tokens]
    if len(set(names)) != len(names):
        raise ConfigError("CUTOUT_MCP_TOKEN: each name may appear once (one token per user).")
    if len({t.secret for t in tokens}) != len(tokens):
        raise ConfigError("CUTOUT_MCP_TOKEN: two users share a token, so they could not be told apart.")
    return tokens


class StaticTokenVerifier:
    """The SDK `TokenVerifier` for configured tokens; the principal is the token's name."""

    def __init__(self, tokens: Sequence[NamedToken]) -> None:
        self._tokens = tuple(tokens)

    async def verify_token(self, token: str) -> AccessToken | None:
        presented = token.encode()
        match: NamedToken | None = None
        for candidate in self._tokens:  # no early exit: timing does not reveal which token matched
            if hmac.compare_digest(presented, candidate.secret):
                match = candidate
        if match is None:
            return None
        # The AccessToken carries a label, not the secret, so nothing downstream can leak it.
        return AccessToken(token=f"static:{match.name}", client_id=match.name, subject=match.name, scopes=[])


def auth_options(settings: Settings) -> dict[str, Any]:
    """`MCPServer` keyword arguments that switch on bearer authentication, or none."""
    oauth_config = oauth.oauth_config(settings)
    if oauth_config is not None:
        introspection = oauth.IntrospectionTokenVerifier(oauth_config)
        return {"token_verifier": introspection, "auth": oauth.auth_settings(oauth_config)}
    if not settings.mcp_tokens:
        return {}
    verifier = StaticTokenVerifier(parse_tokens(settings.mcp_tokens))
    return {"token_verifier": verifier, "auth": AuthSettings(issuer_url=_UNUSED_ISSUER, resource_server_url=None)}


def missing_authentication(settings: Settings) -> str | None:
    """What to set so HTTP on a non-loopback address is authenticated, or None; validates the tokens given."""
    if oauth.oauth_config(settings) is not None:  # also refuses OAuth together with static tokens
        return None
    if settings.mcp_tokens:
        parse_tokens(settings.mcp_tokens)
        return None
    if settings.transport == "stdio" or settings.binds_loopback:
        return None
    return (
        "authentication, since anyone who reaches it could spend your cutout.pro credits: set "
        "CUTOUT_MCP_TOKEN=name:token (several users: alice:token1,bob:token2) or "
        "CUTOUT_MCP_TOKEN_FILE=/path/to/file with one entry per line, and have clients send "
        f"'Authorization: Bearer <token>' (make a token with {_MAKE_TOKEN}); with an OAuth authorization "
        "server, set CUTOUT_OAUTH_ISSUER, CUTOUT_OAUTH_INTROSPECTION_URL and CUTOUT_OAUTH_RESOURCE_URL instead"
    )
