"""The MCP Apps views, seen from the server: which client gets them, what they declare, what they hold.

How they behave in a browser under the official host side is `tests/browser/`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import respx
from mcp import Client
from mcp.client.extension import advertise
from mcp.shared.exceptions import MCPError

from cutout_mcp.bundle.build import bundle_files
from cutout_mcp.config import ConfigError, Settings
from cutout_mcp.server import build_server, views

from .conftest import FAST_RETRY, FakeClock, envelope, video_job

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
VIEWS_DIR = ROOT / "cutout_mcp" / "server" / "views"
APPS = advertise("io.modelcontextprotocol/ui", {"mimeTypes": ["text/html;profile=mcp-app"]})
RESULT = "/api/v2/imageToVideo/getResult"
JOB_ID = 700842286474565


def client(settings: Settings, mode: str, clock: FakeClock, *, apps: bool) -> Client:
    server = build_server(settings, clock=clock, retry=FAST_RETRY)
    return Client(server, mode=mode, extensions=[APPS] if apps else None)


async def test_a_client_that_declares_mcp_apps_gets_a_view_for_each_result_tool(
    settings: Settings, mode: str, clock: FakeClock
) -> None:
    async with client(settings, mode, clock, apps=True) as c:
        tools = {t.name: (t.meta or {}).get("ui", {}).get("resourceUri") for t in (await c.list_tools()).tools}
        listed = {str(r.uri) for r in (await c.list_resources()).resources}
        for tool, uri in views.TOOL_VIEWS.items():
            assert tools[tool] == uri
            assert uri in listed
            content = (await c.read_resource(uri)).contents[0]
            assert content.mime_type == "text/html;profile=mcp-app"
            assert content.meta == {
                "ui": {"csp": {"resourceDomains": ["https://cdn.cutout.pro"]}, "prefersBorder": True}
            }
            assert '"mediaOrigins":["https://cdn.cutout.pro"]' in content.text.replace("&quot;", '"')


async def test_any_other_client_sees_the_tools_and_resources_as_they_were(
    settings: Settings, mode: str, clock: FakeClock
) -> None:
    async with client(settings, mode, clock, apps=False) as c:
        assert all(not (t.meta or {}).get("ui") for t in (await c.list_tools()).tools)
        assert not [r for r in (await c.list_resources()).resources if str(r.uri).startswith("ui://")]
        with pytest.raises(MCPError, match=r"io\.modelcontextprotocol/ui"):
            await c.read_resource(views.VIDEO_VIEW)


async def test_results_are_the_same_with_or_without_a_view(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.get(RESULT).respond(json=envelope(video_job(JOB_ID, status=0, percentage=40)))
    answers: list[Any] = []
    for apps in (True, False):
        async with client(settings, mode, clock, apps=apps) as c:
            result = await c.call_tool("get_video_result", {"id": JOB_ID})
            answers.append((result.structured_content, [block.model_dump() for block in result.content]))
    assert answers[0] == answers[1]
    assert answers[0][0]["status"] == "processing"


def test_a_declared_sandbox_adds_its_own_origin_and_nothing_else_does() -> None:
    sandbox = Settings(sandbox=True, base_url="http://127.0.0.1:8787")
    assert sandbox.view_media_origins == ("https://cdn.cutout.pro", "http://127.0.0.1:8787")
    proxy = Settings(base_url="http://127.0.0.1:8787")  # a local proxy is not a media origin
    assert proxy.view_media_origins == ("https://cdn.cutout.pro",)
    resources = {r.resource.uri: r.resource for r in views.apps(sandbox).resources()}
    assert resources[views.VIDEO_VIEW].meta["ui"]["csp"]["resourceDomains"] == list(sandbox.view_media_origins)


def test_media_origins_are_read_as_origins() -> None:
    loaded = Settings.load({"CUTOUT_MEDIA_ORIGINS": " https://CDN.example.com/, https://*.media.example.net:8443 "})
    assert loaded.media_origins == ("https://cdn.example.com", "https://*.media.example.net:8443")
    assert Settings.load({}).media_origins == ("https://cdn.cutout.pro",)


@pytest.mark.parametrize(
    "value",
    [
        "https://cdn.example.com/videos",
        "cdn.example.com",
        "ftp://cdn.example.com",
        "https://a.com 'unsafe-eval'",
        "https://a.com;script-src *",
        "*",
    ],
)
def test_a_media_origin_that_is_not_an_origin_is_refused_by_name(value: str) -> None:
    with pytest.raises(ConfigError, match=r"CUTOUT_MEDIA_ORIGINS: .*must be an origin"):
        Settings.load({"CUTOUT_MEDIA_ORIGINS": value})


@pytest.mark.parametrize("view", views.VIEWS, ids=lambda v: v.name)
def test_each_view_is_one_small_document_that_loads_nothing_by_itself(view: views.View) -> None:
    page = views.view_html(view, ("https://cdn.cutout.pro",), "1.2.3")
    assert len(page.encode()) < 100_000
    assert re.search(r"<script[^>]+src|<link[^>]+href|@import|url\(", page) is None
    for forbidden in (
        "eval(",
        "new Function",
        "blob:",
        "fetch(",
        "XMLHttpRequest",
        "WebSocket",
        "import(",
        "innerHTML",
    ):
        assert forbidden not in page, f"{view.uri} uses {forbidden}"
    assert page.count("<script>") == 1


def test_a_view_calls_only_free_tools() -> None:
    core = (VIEWS_DIR / "core.js").read_text(encoding="utf-8")
    free = set(re.findall(r'"(\w+)"', re.search(r"FREE_TOOLS = new Set\(\[(.*?)\]\)", core).group(1)))
    assert free == {"get_video_result", "list_video_jobs"}
    scripts = "\n".join(p.read_text(encoding="utf-8") for p in VIEWS_DIR.glob("*.js"))
    assert set(re.findall(r'callTool\("(\w+)"', scripts)) <= free
    assert scripts.count('request("tools/call"') == 1  # the one in callTool, behind the free list


def test_the_views_assets_ship_in_the_wheel_and_the_bundle() -> None:
    assets = {p.name for p in VIEWS_DIR.iterdir() if p.suffix in (".html", ".css", ".js")}
    declared = re.search(r'"cutout_mcp.server.views" = \[(.*?)\]', (ROOT / "pyproject.toml").read_text()).group(1)
    patterns = re.findall(r'"\*(\.\w+)"', declared)
    assert all(any(name.endswith(p) for p in patterns) for name in assets)
    bundled = {name for name, _ in bundle_files()}
    assert {f"cutout_mcp/server/views/{name}" for name in assets} <= bundled
