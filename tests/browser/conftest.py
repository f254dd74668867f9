"""Fixtures for the views in a real browser: one Chromium, one host, one `cutout-mcp --sandbox` per module.

`viewing` is a fresh host page per test, connected to the server; it records every console error,
uncaught error and request of the page and its frames, and `assert_clean()` checks them at the end.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from . import harness

REASON = harness.missing_tools()
SANDBOX_KNOBS = ("--queue-seconds", "2", "--queue-depth", "2", "--job-seconds", "4", "--video-format", "mp4")
"""A job waits about 2 s in the queue, then renders for 4 s: long enough to be seen unfinished."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REASON and "tests/browser/" in item.nodeid:
            item.add_marker(pytest.mark.skip(reason=f"browser tests skipped: {REASON}"))


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("host-web")
    try:
        harness.build_host(out)
    except (subprocess.CalledProcessError, OSError) as exc:  # CI installs the packages first, and fails there
        pytest.skip(
            f"browser tests skipped: the test host could not be installed or bundled ({exc}); "
            f"run npm ci --prefix {harness.HOST_DIR}"
        )
    return out


@pytest.fixture(scope="module")
def site(web: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Host]:
    with harness.cutout_mcp(tmp_path_factory.mktemp("state"), *SANDBOX_KNOBS) as port, harness.host(web, port) as host:
        yield host


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=harness.chromium_path(), args=harness.CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Shown:
    index: int
    result: dict[str, Any]
    view: Any
    """The view's own frame (inside the sandbox proxy's)."""
    proxy: Any


@dataclass
class Viewing:
    """A host page; `show` calls a tool and renders its view, as a chat would under the tool call."""

    page: Any
    site: harness.Host
    sandbox: dict[str, str]
    declared: list[str]
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    shown: list[Shown] = field(default_factory=list)

    def show(self, tool: str, arguments: dict[str, Any], **options: Any) -> Shown:
        answer = self.page.evaluate("([t, a, o]) => host.show(t, a, o)", [tool, arguments, options])
        frame = self.page.query_selector(f'iframe.view[data-index="{answer["index"]}"]').content_frame()
        frame.wait_for_function("() => window.viewEvents !== undefined && window.frames.length === 1")
        view = frame.child_frames[0]
        shown = Shown(answer["index"], answer["result"], view, frame)
        self.shown.append(shown)
        return shown

    def log(self) -> dict[str, Any]:
        return dict(self.page.evaluate("() => host.log"))

    def screenshot(self, name: str) -> None:
        harness.ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(harness.ARTIFACTS / f"{name}.png"), full_page=True)

    def assert_clean(self) -> None:
        """No CSP violation, no uncaught error, no console error, no request to an undeclared origin."""
        for shown in self.shown:
            events = shown.proxy.evaluate("() => window.viewEvents")
            assert events["violations"] == [], events["violations"]
            assert events["errors"] == [], events["errors"]
        assert self.console_errors == []
        assert self.page_errors == []
        allowed = {self.site.host_origin, self.site.sandbox_origin, *self.declared}
        elsewhere = [url for url in self.requests if not url.startswith("data:") and _origin(url) not in allowed]
        assert elsewhere == []


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture
def viewing(browser: Any, site: harness.Host) -> Iterator[Viewing]:
    context = browser.new_context(viewport={"width": 720, "height": 900}, color_scheme="light")
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    uncaught: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: uncaught.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(site.page_url)
    page.wait_for_function("() => window.hostReady === true")
    page.evaluate("() => host.connect()")
    sandbox = page.evaluate("() => host.readJson('cutout://sandbox')")
    csp = page.evaluate("() => host.readView('ui://cutout-mcp/video.html').then(v => v.csp)")
    viewing = Viewing(page, site, sandbox, csp["resourceDomains"], errors, uncaught, requests)
    try:
        yield viewing
    finally:
        context.close()
