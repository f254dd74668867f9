"""The MCP Apps player: time from the tool result to the video's first frame in the view, and view sizes.

The same host as the browser tests (`tests/browser/harness.py`): headless Chromium, the official
AppBridge, the view on a second origin under its declared CSP, and a real `cutout-mcp --sandbox
--transport streamable-http` on loopback. One sandbox video is made first; then each run opens a
fresh browser context (an empty media cache), shows `get_video_result` for that job, and times from
the moment the host hands the result to the view (`sendToolResult`) to the first frame the view's
`<video>` presents (`requestVideoFrameCallback`; `loadeddata` is printed beside it). The clock is the
page's own (`performance.timeOrigin + now()`, shared by both frames). Sizes are the views' HTML as a
host reads it. Targets: first frame under 1 s for the sandbox's clip, each view under 100 KB.

    python bench/viewer.py [--runs N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Row, median, ms, print_rows
from cutout_mcp.config import Settings
from cutout_mcp.server import views
from tests.browser import harness

FIRST_FRAME_TARGET = 1.0
HTML_TARGET = 100 * 1024


def _first_frame(browser: Any, site: harness.Host, job_id: int) -> tuple[float, float]:
    """(seconds to loadeddata, seconds to the first presented frame) for one fresh view of the job."""
    context = browser.new_context(viewport={"width": 720, "height": 900})
    try:
        page = context.new_page()
        page.goto(site.page_url)
        page.wait_for_function("() => window.hostReady === true")
        page.evaluate("() => host.connect()")
        page.evaluate("([id]) => host.show('get_video_result', {id})", [job_id])
        proxy = page.query_selector('iframe.view[data-index="0"]').content_frame()
        proxy.wait_for_function("() => window.viewEvents.frames.some(f => f.kind === 'presented')", timeout=30_000)
        frames = proxy.evaluate("() => window.viewEvents.frames")
        sent = page.evaluate("() => host.log.resultSentAt[0]")
        at = {f["kind"]: f["at"] for f in reversed(frames)}  # the first of each kind
        return (at["loadeddata"] - sent) / 1000, (at["presented"] - sent) / 1000
    finally:
        context.close()


def run(runs: int = 7) -> list[Row]:
    sizes = {view.name: len(views.view_html(view, Settings().view_media_origins, "0").encode()) for view in views.VIEWS}
    rows = [
        Row("viewer", f"{name} HTML", f"{size / 1024:.1f} KB", target="< 100 KB", met=size < HTML_TARGET)
        for name, size in sizes.items()
    ]
    missing = harness.missing_tools()
    if missing:
        print(f"viewer: first frame not measured: {missing}", file=sys.stderr)
        return rows
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="cutout-bench-viewer-") as tmp:
        web = Path(tmp) / "web"
        harness.build_host(web)
        knobs = ("--queue-seconds", "0", "--queue-depth", "0", "--job-seconds", "0.5", "--video-format", "mp4")
        with (
            harness.cutout_mcp(Path(tmp) / "state", *knobs) as port,
            harness.host(web, port) as site,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=harness.chromium_path(), args=harness.CHROMIUM_ARGS)
            try:
                job_id = _make_video(browser, site)
                _first_frame(browser, site, job_id)  # warm-up: page cache, the sandbox's rendered clip
                timings = [_first_frame(browser, site, job_id) for _ in range(runs)]
            finally:
                browser.close()
    loaded = median([t[0] for t in timings])
    presented = median([t[1] for t in timings])
    return [
        Row("viewer", "result -> loadeddata (sandbox, loopback)", ms(loaded)),
        Row(
            "viewer",
            "result -> first video frame (sandbox, loopback)",
            ms(presented),
            target=f"< {ms(FIRST_FRAME_TARGET)}",
            met=presented < FIRST_FRAME_TARGET,
        ),
        *rows,
    ]


def _make_video(browser: Any, site: harness.Host) -> int:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(site.page_url)
        page.wait_for_function("() => window.hostReady === true")
        page.evaluate("() => host.connect()")
        sample = page.evaluate("() => host.readJson('cutout://sandbox')")["sample_image_url"]
        shown = page.evaluate("([u]) => host.show('generate_video', {image_url: u, wait_seconds: 60})", [sample])
        job: dict[str, Any] = shown["result"]["structuredContent"]
        if job["status"] != "succeeded":
            raise RuntimeError(f"the sandbox video did not finish: {job['message']}")
        return int(job["id"])
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print_rows(run(args.runs))


if __name__ == "__main__":
    main()
