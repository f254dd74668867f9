"""OAuth resource-server mode: tokens checked by RFC 7662 introspection, over the real HTTP app.

The introspection endpoint is a respx router behind an `httpx.MockTransport`
injected into the verifier, so only the verifier's own calls are mocked: the
test's HTTP client and the SDK's (httpx2) client reach the real server.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import httpx2
import pytest
import respx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from cutout_mcp.cli import main, transport_security
from cutout_mcp.clock import ManualClock
from cutout_mcp.config import ENVIRONMENT, ConfigError, Settings
from cutout_mcp.logs import configure_logging
from cutout_mcp.server import auth, oauth
from cutout_mcp.server.oauth import IntrospectionTokenVerifier, OAuthConfig, oauth_config

from .conftest import API_KEY, BASE_URL
from .test_auth import ACCEPT, INITIALIZE, serving

pytestmark = pytest.mark.anyio

ISSUER = "https://auth.example.com"
INTROSPECT = "https://auth.example.com/oauth/introspect"
RESOURCE = "https://mcp.example.com/mcp"
CLIENT_ID = "cutout-rs"
CLIENT_SECRET = "rs-secret-abcdef0123456789"
TOKEN = "opaque-token-alice-0123456789"
OAUTH_ENV = {
    "CUTOUT_OAUTH_ISSUER": ISSUER,
    "CUTOUT_OAUTH_INTROSPECTION_URL": INTROSPECT,
    "CUTOUT_OAUTH_RESOURCE_URL": RESOURCE,
}


def claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "active": True,
        "sub": "alice",
        "client_id": "claude-desktop",
        "iss": ISSUER,
        "aud": [RESOURCE, "https://other.example.com"],
        "scope": "mcp:tools openid",
        "exp": int(time.time()) + 600,
        "token_type": "Bearer",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture
def introspection() -> respx.Router:
    return respx.Router(assert_all_called=False, assert_all_mocked=True)


def make_verifier(router: respx.Router, **config: Any) -> IntrospectionTokenVerifier:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "introspection_url": INTROSPECT,
        "resource_url": RESOURCE,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "required_scopes": ("mcp:tools",),
    }
    values.update(config)
    return IntrospectionTokenVerifier(OAuthConfig(**values), transport=httpx.MockTransport(router.async_handler))


@pytest.fixture
async def verifier(introspection: respx.Router) -> AsyncIterator[IntrospectionTokenVerifier]:
    v = make_verifier(introspection)
    yield v
    await v.aclose()


# --- the verifier -----------------------------------------------------------------


async def test_an_active_token_maps_to_its_user_and_the_server_authenticates_itself(
    introspection: respx.Router, verifier: IntrospectionTokenVerifier
) -> None:
    route = introspection.post(INTROSPECT).respond(json=claims())
    access = await verifier.verify_token(TOKEN)
    assert access is not None
    assert (access.client_id, access.subject, access.claims) == ("claude-desktop", "alice", {"iss": ISSUER})
    assert access.resource == RESOURCE
    assert "mcp:tools" in access.scopes
    assert TOKEN not in access.model_dump_json()

    sent = route.calls.last.request
    assert parse_qs(sent.content.decode()) == {"token": [TOKEN], "token_type_hint": ["access_token"]}
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {expected}"


async def test_without_client_credentials_no_authorization_header_is_sent(introspection: respx.Router) -> None:
    route = introspection.post(INTROSPECT).respond(json=claims())
    verifier = make_verifier(introspection, client_id=None, client_secret=None)
    assert await verifier.verify_token(TOKEN) is not None
    assert "authorization" not in route.calls.last.request.headers
    await verifier.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(claims(active=False), id="inactive"),
        pytest.param({"active": "true", **{k: v for k, v in claims().items() if k != "active"}}, id="active-not-bool"),
        pytest.param(claims(exp=int(time.time()) - 1), id="expired"),
        pytest.param(claims(exp="tomorrow"), id="exp-not-a-number"),
        pytest.param(claims(nbf=int(time.time()) + 3600), id="not-yet-valid"),
        pytest.param(claims(aud="https://other.example.com/mcp"), id="wrong-audience"),
        pytest.param(claims(aud=None), id="no-audience"),
        pytest.param(claims(iss="https://evil.example.com"), id="other-issuer"),
        pytest.param(claims(scope="openid"), id="missing-scope"),
        pytest.param(claims(scope=None), id="no-scope"),
        pytest.param(claims(sub=None, client_id=None), id="nobody"),
        pytest.param([claims()], id="not-an-object"),
    ],
)
async def test_tokens_that_fail_a_check_are_refused(
    introspection: respx.Router, verifier: IntrospectionTokenVerifier, answer: Any
) -> None:
    introspection.post(INTROSPECT).respond(json=answer)
    assert await verifier.verify_token(TOKEN) is None


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx.ConnectError("refused"), id="down"),
        pytest.param(httpx.ReadTimeout("slow"), id="timeout"),
        pytest.param(httpx.Response(500, text="oops"), id="500"),
        pytest.param(httpx.Response(401, json={"error": "invalid_client"}), id="401"),
        pytest.param(httpx.Response(302, headers={"Location": "https://elsewhere.example.com/"}), id="redirect"),
        pytest.param(httpx.Response(200, text="<html>"), id="not-json"),
        pytest.param(httpx.Response(200, content=b"{" + b" " * (oauth.MAX_RESPONSE_BYTES + 1)), id="huge"),
    ],
)
async def test_an_unusable_introspection_endpoint_refuses_the_token_without_raising(
    introspection: respx.Router,
    verifier: IntrospectionTokenVerifier,
    response: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    route = introspection.post(INTROSPECT)
    route.side_effect = response if isinstance(response, Exception) else None
    if not isinstance(response, Exception):
        route.return_value = response
    caplog.set_level(logging.DEBUG)
    assert await verifier.verify_token(TOKEN) is None
    assert TOKEN not in caplog.text
    assert CLIENT_SECRET not in caplog.text
    assert len(introspection.calls) == 1  # a redirect is not followed


async def test_results_are_cached_briefly_by_hash_and_refusals_not_at_all(introspection: respx.Router) -> None:
    clock = ManualClock(1_000_000.0)
    route = introspection.post(INTROSPECT).respond(json=claims(exp=1_000_003))
    verifier = IntrospectionTokenVerifier(
        OAuthConfig(ISSUER, INTROSPECT, RESOURCE),
        transport=httpx.MockTransport(introspection.async_handler),
        clock=clock,
    )
    assert await verifier.verify_token(TOKEN) is not None
    assert await verifier.verify_token(TOKEN) is not None
    assert route.call_count == 1
    assert TOKEN not in repr(vars(verifier))
    clock.advance(3)  # the token's exp comes before the cache's five seconds
    route.respond(json=claims(active=False))
    assert await verifier.verify_token(TOKEN) is None
    assert await verifier.verify_token(TOKEN) is None
    assert route.call_count == 3
    await verifier.aclose()


async def test_the_cache_is_bounded(introspection: respx.Router) -> None:
    introspection.post(INTROSPECT).respond(json=claims())
    verifier = IntrospectionTokenVerifier(
        OAuthConfig(ISSUER, INTROSPECT, RESOURCE),
        transport=httpx.MockTransport(introspection.async_handler),
        cache_entries=3,
    )
    for n in range(10):
        assert await verifier.verify_token(f"{TOKEN}-{n}") is not None
    assert verifier.cached_tokens == 3
    await verifier.aclose()


# --- configuration ----------------------------------------------------------------


def test_oauth_variables_are_http_only_and_the_secret_can_come_from_a_file(tmp_path: Path) -> None:
    assert {v for v in ENVIRONMENT if v.startswith("CUTOUT_OAUTH_")} == {
        "CUTOUT_OAUTH_ISSUER",
        "CUTOUT_OAUTH_INTROSPECTION_URL",
        "CUTOUT_OAUTH_RESOURCE_URL",
        "CUTOUT_OAUTH_CLIENT_ID",
        "CUTOUT_OAUTH_CLIENT_SECRET",
        "CUTOUT_OAUTH_REQUIRED_SCOPES",
    }
    assert all(ENVIRONMENT[v] == "http" for v in ENVIRONMENT if v.startswith("CUTOUT_OAUTH_"))
    (tmp_path / "secret").write_text(CLIENT_SECRET + "\n")
    settings = Settings.load(
        {
            **OAUTH_ENV,
            "CUTOUT_OAUTH_CLIENT_ID": CLIENT_ID,
            "CUTOUT_OAUTH_CLIENT_SECRET_FILE": str(tmp_path / "secret"),
            "CUTOUT_OAUTH_REQUIRED_SCOPES": "mcp:tools, mcp:admin",
        }
    )
    config = oauth_config(settings)
    assert config is not None
    assert config.client_secret == CLIENT_SECRET
    assert config.required_scopes == ("mcp:tools", "mcp:admin")
    assert CLIENT_SECRET not in repr(config)
    assert CLIENT_SECRET not in repr(settings)
    assert oauth_config(Settings()) is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CUTOUT_OAUTH_ISSUER": ISSUER}, "missing: CUTOUT_OAUTH_INTROSPECTION_URL, CUTOUT_OAUTH_RESOURCE_URL"),
        ({"CUTOUT_OAUTH_REQUIRED_SCOPES": "mcp"}, "missing: CUTOUT_OAUTH_ISSUER"),
        ({**OAUTH_ENV, "CUTOUT_OAUTH_CLIENT_SECRET": CLIENT_SECRET}, "both CUTOUT_OAUTH_CLIENT_ID"),
        ({**OAUTH_ENV, "CUTOUT_MCP_TOKEN": "alice:alice-0123456789abcdef"}, "not both"),
    ],
)
def test_incomplete_or_conflicting_oauth_setups_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        oauth_config(Settings.load(env))
    assert CLIENT_SECRET not in str(caught.value)
    assert "0123456789abcdef" not in str(caught.value)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("CUTOUT_OAUTH_INTROSPECTION_URL", "http://auth.example.com/introspect"),
        ("CUTOUT_OAUTH_ISSUER", "auth.example.com"),
        ("CUTOUT_OAUTH_RESOURCE_URL", "https://mcp.example.com/mcp?x=1"),
    ],
)
def test_oauth_urls_must_be_https_off_loopback(var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=var):
        Settings.load({**OAUTH_ENV, var: value})
    Settings.load({**OAUTH_ENV, "CUTOUT_OAUTH_INTROSPECTION_URL": "http://127.0.0.1:9000/introspect"})


def test_oauth_mode_counts_as_authentication_for_a_public_bind(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    public = {"transport": "streamable-http", "host": "0.0.0.0", "allowed_hosts": ("mcp.example.com",)}
    transport_security(Settings.load(OAUTH_ENV, **public))
    with pytest.raises(ConfigError, match="not both"):
        transport_security(Settings.load({**OAUTH_ENV, "CUTOUT_MCP_TOKEN": "alice:alice-0123456789abcdef"}, **public))
    with pytest.raises(ConfigError, match="CUTOUT_OAUTH_ISSUER"):
        transport_security(Settings(**public))  # type: ignore[arg-type]
    for name, value in {**OAUTH_ENV, "CUTOUT_MCP_TOKEN": "alice:alice-0123456789abcdef"}.items():
        monkeypatch.setenv(name, value)
    code = main(["--transport", "streamable-http", "--host", "0.0.0.0", "--allowed-host", "mcp.example.com"])
    assert code == 2
    assert "not both" in capsys.readouterr().err


def test_the_client_secret_is_redacted_from_logs(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.load(
        {**OAUTH_ENV, "CUTOUT_OAUTH_CLIENT_ID": CLIENT_ID, "CUTOUT_OAUTH_CLIENT_SECRET": CLIENT_SECRET}
    )
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        configure_logging(settings)
        logging.getLogger("cutout_mcp.test").warning("secret is %s", CLIENT_SECRET)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    err = capsys.readouterr().err
    assert "secret is [REDACTED]" in err
    assert CLIENT_SECRET not in err


# --- over HTTP --------------------------------------------------------------------


async def test_the_http_app_publishes_metadata_challenges_and_accepts_introspected_tokens(
    introspection: respx.Router, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        token = parse_qs(request.content.decode())["token"][0]
        user = {TOKEN: "alice", "opaque-token-bob-9876543210": "bob"}.get(token)
        return httpx.Response(200, json=claims(sub=user) if user else {"active": False})

    introspection.post(INTROSPECT).mock(side_effect=answer)
    transport = httpx.MockTransport(introspection.async_handler)
    verifiers: list[IntrospectionTokenVerifier] = []

    def verifier_with_mock(config: OAuthConfig) -> IntrospectionTokenVerifier:
        verifiers.append(IntrospectionTokenVerifier(config, transport=transport))
        return verifiers[-1]

    monkeypatch.setattr(auth.oauth, "IntrospectionTokenVerifier", verifier_with_mock)
    settings = Settings(
        api_key=API_KEY,
        base_url=BASE_URL,
        transport="streamable-http",
        preflight=False,
        state_dir=tmp_path / "state",
        oauth_issuer=ISSUER,
        oauth_introspection_url=INTROSPECT,
        oauth_resource_url=RESOURCE,
        oauth_required_scopes=("mcp:tools",),
    )
    async with serving(settings) as url:
        base = url.removesuffix("/mcp")
        async with httpx.AsyncClient(timeout=10) as http:
            for headers in ({}, {"Authorization": "Bearer not-a-known-token-000000"}):
                response = await http.post(url, json=INITIALIZE, headers={**ACCEPT, **headers})
                assert response.status_code == 401
                challenge = response.headers["www-authenticate"]
                assert challenge.startswith("Bearer ")
                assert 'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"' in (
                    challenge
                )
            metadata = (await http.get(f"{base}/.well-known/oauth-protected-resource/mcp")).json()
        assert metadata["resource"] == RESOURCE
        assert [s.rstrip("/") for s in metadata["authorization_servers"]] == [ISSUER]
        assert metadata["scopes_supported"] == ["mcp:tools"]

        seen = {}
        for name, token in (("alice", TOKEN), ("bob", "opaque-token-bob-9876543210")):
            http2 = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=10)
            async with http2, Client(streamable_http_client(url, http_client=http2)) as client:
                tools = {t.name for t in (await client.list_tools()).tools}
                assert {"generate_video", "edit_image"} <= tools
                seen[name] = str((await client.call_tool("whoami", {})).structured_content)
    for verifier in verifiers:
        await verifier.aclose()
    assert "alice" in seen["alice"]
    assert "bob" in seen["bob"]
    assert ISSUER in seen["alice"]
    assert seen["alice"] != seen["bob"]
