"""OAuth resource-server mode: bearer tokens checked by RFC 7662 token introspection.

For deployments that have an authorization server. With `CUTOUT_OAUTH_ISSUER`,
`CUTOUT_OAUTH_INTROSPECTION_URL` and `CUTOUT_OAUTH_RESOURCE_URL` set, the HTTP
transports accept a bearer token only if the authorization server's
introspection endpoint says it is:

- active (`"active": true`), not expired (`exp`) and already valid (`nbf`);
- issued by the configured issuer (`iss`, when the response names one);
- issued for this server (RFC 8707): `aud` (a string or a list) includes
  `CUTOUT_OAUTH_RESOURCE_URL`. A token without `aud` is refused, since nothing
  would stop a token minted for another service from being replayed here;
- carrying every scope in `CUTOUT_OAUTH_REQUIRED_SCOPES`;
- naming a user or client (`sub` or `client_id`), so jobs can be scoped.

The caller's principal is the SDK's (client_id, issuer, subject) triple, so two
users of one client, or one user of two issuers, are different principals.

Anything else (an unreachable, slow or erroring endpoint, a response that is not
a JSON object, a redirect) refuses the token: the check fails closed and never
raises into the request. The server authenticates to the endpoint with HTTP
Basic when `CUTOUT_OAUTH_CLIENT_ID` and `CUTOUT_OAUTH_CLIENT_SECRET` (or
`_SECRET_FILE`) are set.

Cache: active results are kept for at most `CACHE_SECONDS` (and never past the
token's `exp`), keyed by the SHA-256 of the token, in a bounded LRU of
`CACHE_ENTRIES`. One MCP session makes many HTTP requests in a burst, and
without a cache each would cost a round trip to the authorization server. The
price is that a revoked token keeps working for up to `CACHE_SECONDS`; refusals
are never cached. The raw token is never stored, logged or put into the
`AccessToken` handed to the rest of the server.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings

from cutout_mcp.clock import Clock, SystemClock
from cutout_mcp.config import ConfigError, Settings

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

CACHE_SECONDS = 5.0
CACHE_ENTRIES = 1024
MAX_RESPONSE_BYTES = 64 * 1024
TIMEOUT_SECONDS = 5.0
CONNECT_SECONDS = 3.0
CLOCK_SKEW_SECONDS = 30
"""Leeway for `nbf` only; `exp` is honoured exactly (the authorization server decides `active` anyway)."""

_REQUIRED = {
    "oauth_issuer": "CUTOUT_OAUTH_ISSUER",
    "oauth_introspection_url": "CUTOUT_OAUTH_INTROSPECTION_URL",
    "oauth_resource_url": "CUTOUT_OAUTH_RESOURCE_URL",
}


@dataclass(frozen=True)
class OAuthConfig:
    issuer: str
    introspection_url: str
    resource_url: str
    client_id: str | None = None
    client_secret: str | None = None
    required_scopes: tuple[str, ...] = ()

    def __repr__(self) -> str:  # the secret stays out of reprs, tracebacks and logs
        return f"OAuthConfig(issuer={self.issuer!r}, resource_url={self.resource_url!r})"


def oauth_config(settings: Settings) -> OAuthConfig | None:
    """The OAuth settings when OAuth mode is configured, None when not; a half-done setup is refused."""
    given = {field for field in _REQUIRED if getattr(settings, field)}
    extras = settings.oauth_client_id or settings.oauth_client_secret or settings.oauth_required_scopes
    if not given and not extras:
        return None
    missing = [var for field, var in _REQUIRED.items() if field not in given]
    if missing:
        raise ConfigError(
            "OAuth resource-server mode needs CUTOUT_OAUTH_ISSUER, CUTOUT_OAUTH_INTROSPECTION_URL and "
            f"CUTOUT_OAUTH_RESOURCE_URL together; missing: {', '.join(missing)}."
        )
    if settings.mcp_tokens:
        raise ConfigError(
            "CUTOUT_MCP_TOKEN (static bearer tokens) and CUTOUT_OAUTH_* (tokens from an authorization "
            "server) are two different ways to authenticate; set one of them, not both."
        )
    if bool(settings.oauth_client_id) != bool(settings.oauth_client_secret):
        raise ConfigError(
            "Set both CUTOUT_OAUTH_CLIENT_ID and CUTOUT_OAUTH_CLIENT_SECRET (or CUTOUT_OAUTH_CLIENT_SECRET_FILE) "
            "to authenticate to the introspection endpoint, or neither."
        )
    secret = settings.oauth_client_secret.get_secret_value() if settings.oauth_client_secret else None
    return OAuthConfig(
        issuer=settings.oauth_issuer or "",
        introspection_url=settings.oauth_introspection_url or "",
        resource_url=settings.oauth_resource_url or "",
        client_id=settings.oauth_client_id,
        client_secret=secret,
        required_scopes=settings.oauth_required_scopes,
    )


def auth_settings(config: OAuthConfig) -> AuthSettings:
    """The SDK settings that publish RFC 9728 metadata and put `resource_metadata` into 401s."""
    return AuthSettings.model_validate(
        {
            "issuer_url": config.issuer,
            "resource_server_url": config.resource_url,
            "required_scopes": list(config.required_scopes) or None,
            # The verifier sets AccessToken.resource only after checking `aud`; the SDK checks it again.
            "validate_token_resource": True,
        }
    )


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class IntrospectionTokenVerifier:
    """The SDK `TokenVerifier` that asks the authorization server (RFC 7662) about each token."""

    def __init__(
        self,
        config: OAuthConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        cache_seconds: float = CACHE_SECONDS,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        self._config = config
        self._transport = transport
        self._clock = clock or SystemClock()
        self._cache_seconds = cache_seconds
        self._cache_entries = cache_entries
        self._cache: OrderedDict[str, tuple[AccessToken, float]] = OrderedDict()
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx  # with the first token checked: start-up needs no HTTP client

            auth = None
            if self._config.client_id and self._config.client_secret:
                auth = httpx.BasicAuth(self._config.client_id, self._config.client_secret)
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(TIMEOUT_SECONDS, connect=CONNECT_SECONDS),
                auth=auth,
                follow_redirects=False,  # the token goes to the configured endpoint and nowhere else
                trust_env=False,
                headers={"Accept": "application/json"},
            )
        return self._client

    @property
    def cached_tokens(self) -> int:
        """How many accepted tokens are remembered now (bounded by `cache_entries`)."""
        return len(self._cache)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def verify_token(self, token: str) -> AccessToken | None:
        if not token:
            return None
        key = _token_key(token)
        now = self._clock.now()
        cached = self._cache.get(key)
        if cached is not None:
            access, until = cached
            if now < until:
                self._cache.move_to_end(key)
                return access
            del self._cache[key]
        claims = await self._introspect(token)
        if claims is None:
            return None
        accepted = self._accept(claims, key, now)
        if accepted is not None:
            self._remember(key, accepted, now)
        return accepted

    async def _introspect(self, token: str) -> Mapping[str, Any] | None:
        """The endpoint's JSON object, or None after logging why (never with the token)."""
        try:
            request = self._http().build_request(
                "POST", self._config.introspection_url, data={"token": token, "token_type_hint": "access_token"}
            )
            response = await self._http().send(request, stream=True)
            try:
                if response.status_code != 200:
                    logger.warning("Token introspection answered HTTP %d; refusing the token", response.status_code)
                    return None
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        logger.warning("Token introspection response is over %d bytes; refusing", MAX_RESPONSE_BYTES)
                        return None
            finally:
                await response.aclose()
            claims = json.loads(body)
        except Exception as exc:  # fail closed: any failure refuses the token, never the request handler
            logger.warning("Token introspection failed (%s); refusing the token", type(exc).__name__)
            return None
        if not isinstance(claims, dict):
            logger.warning("Token introspection did not return a JSON object; refusing the token")
            return None
        return claims

    def _accept(self, claims: Mapping[str, Any], key: str, now: float) -> AccessToken | None:
        """An AccessToken when every check passes; the reason for a refusal is logged at DEBUG."""
        label = key[:12]
        reason = self._refusal(claims, now)
        if reason is not None:
            logger.debug("Refusing token sha256:%s: %s", label, reason)
            return None
        exp, iss, scope = claims.get("exp"), claims.get("iss"), claims.get("scope")
        sub, client_id = claims.get("sub"), claims.get("client_id")
        return AccessToken(
            token=f"introspected:sha256:{label}",  # a label: the secret itself goes no further
            client_id=client_id if isinstance(client_id, str) else "",
            scopes=scope.split() if isinstance(scope, str) else [],
            expires_at=int(exp) if isinstance(exp, (int, float)) else None,
            resource=self._config.resource_url,
            subject=sub if isinstance(sub, str) and sub else None,
            claims={"iss": iss if isinstance(iss, str) else self._config.issuer},
        )

    def _refusal(self, claims: Mapping[str, Any], now: float) -> str | None:
        """Why the introspected token must be refused, or None."""
        if claims.get("active") is not True:
            return "not active"
        exp = claims.get("exp")
        if exp is not None and (not _is_number(exp) or exp <= now):
            return "expired"
        nbf = claims.get("nbf")
        if _is_number(nbf) and nbf > now + CLOCK_SKEW_SECONDS:
            return "not valid yet"
        iss = claims.get("iss")
        if iss is not None and (not isinstance(iss, str) or not _same_url(iss, self._config.issuer)):
            return "issued by another authorization server"
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(a, str) and _same_url(a, self._config.resource_url) for a in audiences):
            return "audience does not include this resource"
        scope = claims.get("scope")
        scopes = scope.split() if isinstance(scope, str) else []
        missing = [s for s in self._config.required_scopes if s not in scopes]
        if missing:
            return f"missing scope {' '.join(missing)}"
        if not any(isinstance(claims.get(name), str) and claims.get(name) for name in ("sub", "client_id")):
            return "names neither a subject nor a client"
        return None

    def _remember(self, key: str, access: AccessToken, now: float) -> None:
        until = now + self._cache_seconds
        if access.expires_at is not None:
            until = min(until, access.expires_at)
        if until <= now or self._cache_entries <= 0:
            return
        self._cache[key] = (access, until)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)
