"""Bearer-token authentication on the HTTP transports, and the refusal to expose a server without it.

The HTTP tests run the real streamable-HTTP app under uvicorn on a loopback
socket bound before the server starts (so no waiting for start-up), and talk
to it with plain HTTP and with the SDK's own client.
"""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
import respx
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from pydantic import SecretStr

from cutout_mcp.cli import main, transport_security
from cutout_mcp.config import ConfigError, Settings
from cutout_mcp.server import build_server
from cutout_mcp.server.auth import StaticTokenVerifier, missing_authentication, parse_tokens
from cutout_mcp.server.principal import current_principal

from .conftest import API_KEY, BASE_URL, envelope, video_job

pytestmark = pytest.mark.anyio

ALICE = "alice-0123456789abcdefghij"
BOB = "bob-9876543210zyxwvutsrqpo"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


# --- configuration ---------------------------------------------------------------


def test_named_and_bare_tokens_become_principals() -> None:
    tokens = parse_tokens([SecretStr(f"alice:{ALICE}"), SecretStr(BOB)])
    assert [t.name for t in tokens] == ["alice", "token-2"]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["alice:short"], "shorter than 16"),
        ([f"alice:{ALICE}", f"alice:{BOB}"], "each name may appear once"),
        ([f"alice:{ALICE}", f"bob:{ALICE}"], "share a token"),
    ],
)
def test_weak_or_ambiguous_tokens_are_refused_without_echoing_them(entries: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_tokens([SecretStr(e) for e in entries])
    assert ALICE not in str(caught.value)
    assert "short" not in str(caught.value).replace("shorter", "")


async def test_the_verifier_names_the_caller_and_keeps_no_secret() -> None:
    verifier = StaticTokenVerifier(parse_tokens([SecretStr(f"alice:{ALICE}"), SecretStr(f"bob:{BOB}")]))
    alice = await verifier.verify_token(ALICE)
    assert alice is not None
    assert (alice.client_id, alice.subject) == ("alice", "alice")
    assert ALICE not in alice.model_dump_json()
    assert await verifier.verify_token(ALICE[:-1] + "x") is None
    assert await verifier.verify_token("") is None


def test_a_public_bind_without_a_token_is_refused_with_the_way_out() -> None:
    public = Settings(transport="streamable-http", host="0.0.0.0", allowed_hosts=("mcp.example.com",))
    with pytest.raises(ConfigError) as caught:
        transport_security(public)
    assert "CUTOUT_MCP_TOKEN" in str(caught.value)
    assert "CUTOUT_MCP_TOKEN_FILE" in str(caught.value)
    assert "--allowed-host" not in str(caught.value), "only what is missing is listed"
    assert missing_authentication(Settings(transport="streamable-http")) is None  # loopback may run without


def test_the_cli_refuses_a_public_bind_without_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CUTOUT_MCP_TOKEN", raising=False)
    code = main(["--transport", "streamable-http", "--host", "0.0.0.0", "--allowed-host", "mcp.example.com"])
    assert code == 2
    assert "authentication, since anyone who reaches it could spend your cutout.pro credits" in capsys.readouterr().err


def test_tokens_and_the_key_can_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "tokens").write_text(f"# one per user\nalice:{ALICE}\nbob:{BOB}\n")
    (tmp_path / "key").write_text(API_KEY + "\n")
    env = {"CUTOUT_MCP_TOKEN_FILE": str(tmp_path / "tokens"), "CUTOUT_API_KEY_FILE": str(tmp_path / "key")}
    settings = Settings.load(env)
    assert [t.name for t in parse_tokens(settings.mcp_tokens)] == ["alice", "bob"]
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == API_KEY
    with pytest.raises(ConfigError, match="not both"):
        Settings.load({**env, "CUTOUT_API_KEY": "other"})
    with pytest.raises(ConfigError, match="CUTOUT_API_KEY_FILE: cannot read"):
        Settings.load({"CUTOUT_API_KEY_FILE": str(tmp_path / "missing")})


# --- over HTTP --------------------------------------------------------------------


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[str]:
    """The real streamable-HTTP app on a loopback port; yields its /mcp URL."""
    server = build_server(settings)

    @server.tool()
    def whoami() -> str:
        """Test-only: the principal the server sees for this request."""
        return current_principal()

    app = server.streamable_http_app(
        transport_security=transport_security(settings), max_request_body_size=settings.max_request_body_size
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    web = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(web.serve, [sock])
        try:
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            web.should_exit = True


@pytest.fixture
def http_settings(tmp_path: Path) -> Settings:
    return Settings(
        api_key=API_KEY,
        base_url=BASE_URL,
        transport="streamable-http",
        mcp_tokens=(f"alice:{ALICE}", f"bob:{BOB}"),
        max_request_body_size=4096,
        preflight=False,
        state_dir=tmp_path / "state",
    )


async def test_requests_without_the_right_token_get_401_with_www_authenticate(http_settings: Settings) -> None:
    async with serving(http_settings) as url, httpx.AsyncClient(timeout=10) as http:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0000000000"}, {"Authorization": f"Basic {ALICE}"}):
            response = await http.post(url, json=INITIALIZE, headers={**ACCEPT, **headers})
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer ")
            assert ALICE not in response.text


async def test_the_sdk_client_with_a_token_works_and_each_user_is_their_own_principal(
    http_settings: Settings,
) -> None:
    async with serving(http_settings) as url:
        seen = {}
        for name, token in (("alice", ALICE), ("bob", BOB)):
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=10)
            async with http, Client(streamable_http_client(url, http_client=http)) as client:
                tools = {t.name for t in (await client.list_tools()).tools}
                assert {"generate_video", "get_video_result", "edit_image"} <= tools
                result = await client.call_tool("whoami", {})
                seen[name] = result.structured_content or {}
    assert "alice" in str(seen["alice"])
    assert "bob" in str(seen["bob"])
    assert seen["alice"] != seen["bob"]


def documented_client() -> str:
    """The Python client block of docs/security.md, exactly as a reader copies it."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "security.md").read_text()
    (block,) = re.findall(r"^```python\n(.*?)^```$", page, re.DOTALL | re.MULTILINE)
    return block


async def test_the_documented_python_client_sends_its_token(
    http_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    snippet: dict[str, Any] = {"__name__": "documented_client"}  # defines main(); the __main__ part stays out
    exec(compile(documented_client(), "docs/security.md", "exec"), snippet)
    async with serving(http_settings) as url:
        await snippet["main"](url, ALICE)
        printed = capsys.readouterr().out
        assert "tools: generate_video, get_video_result, edit_image" in printed
        assert "'jobs': []" in printed
        # the same code with a token the server does not know is refused (the client's task groups wrap it)
        with pytest.RaisesGroup(MCPError, flatten_subgroups=True):
            await snippet["main"](url, "not-a-token-of-this-server")


async def test_a_body_over_the_limit_is_refused_before_it_is_parsed(http_settings: Settings) -> None:
    huge = {**INITIALIZE, "params": {**INITIALIZE["params"], "padding": "x" * 10_000}}  # type: ignore[dict-item]
    async with serving(http_settings) as url, httpx.AsyncClient(timeout=10) as http:
        response = await http.post(url, json=huge, headers={**ACCEPT, "Authorization": f"Bearer {ALICE}"})
    assert response.status_code == 413


# --- jobs the ledger does not know ---------------------------------------------------------


@asynccontextmanager
async def as_user(url: str, token: str) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=10)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        yield client


def job_answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=envelope(video_job(int(request.url.params["id"]), percentage=30)))


async def test_a_job_id_the_ledger_does_not_know_is_nobodys_on_a_server_with_several_users(
    http_settings: Settings, upstream: respx.MockRouter
) -> None:
    made, elsewhere = 700842286474565, 700842286474999
    upstream.post("/api/v2/imageToVideo/generate").respond(json=envelope(made))
    reads = upstream.get("/api/v2/imageToVideo/getResult").mock(side_effect=job_answer)
    image = {"image_url": "https://img.example.com/cat.jpg", "wait_seconds": 0}
    async with serving(http_settings) as url:
        async with as_user(url, ALICE) as alice:
            assert (await alice.call_tool("generate_video", image)).is_error is False
            refused_alice = await alice.call_tool("get_video_result", {"id": elsewhere})
            mine = await alice.call_tool("get_video_result", {"id": made})
        async with as_user(url, BOB) as bob:
            refused_bob = await bob.call_tool("get_video_result", {"id": elsewhere})
            not_bobs = await bob.call_tool("get_video_result", {"id": made})
    assert mine.is_error is False
    for refused in (refused_alice, refused_bob, not_bobs):
        assert refused.is_error is True
        assert "not one of yours" in refused.content[0].text  # type: ignore[union-attr]
    assert refused_bob.content[0].text.replace(str(elsewhere), "") == not_bobs.content[0].text.replace(  # type: ignore[union-attr]
        str(made), ""
    ), "an unknown id and another caller's job read alike"
    asked = [request.url.params["id"] for request, _ in reads.calls]
    assert str(elsewhere) not in asked, "the unknown id was never sent to cutout.pro"
    assert asked.count(str(made)) >= 1


async def test_on_stdio_the_one_user_may_resume_a_job_made_elsewhere(
    settings: Settings, upstream: respx.MockRouter
) -> None:
    elsewhere = 700842286474999
    reads = upstream.get("/api/v2/imageToVideo/getResult").mock(side_effect=job_answer)
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("get_video_result", {"id": elsewhere})
    assert result.is_error is False, result.content
    assert [request.url.params["id"] for request, _ in reads.calls] == [str(elsewhere)]


@pytest.mark.parametrize(
    ("changes", "one"),
    [
        ({}, True),
        ({"transport": "streamable-http"}, True),  # no authentication: every caller is `local`
        ({"transport": "streamable-http", "mcp_tokens": (f"alice:{ALICE}",)}, False),
        ({"transport": "sse", "mcp_tokens": (f"alice:{ALICE}",)}, False),
        ({"mcp_tokens": (f"alice:{ALICE}",)}, True),  # stdio ignores tokens
    ],
)
def test_which_servers_have_one_user(changes: dict[str, object], one: bool) -> None:
    from cutout_mcp.core.jobs.videos import one_user

    assert one_user(Settings(**changes)) is one  # type: ignore[arg-type]
