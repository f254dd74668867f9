"""Result downloads go through the SSRF guard: a finished job's URLs come from a remote answer.

The real `cutout-mcp` process reads a finished job from a stand-in cutout.pro whose result and cover
URLs point at the cloud metadata address and at a loopback port that records any connection. Nothing
is fetched or saved, and the job still comes back succeeded with its id and URLs and the reason.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from starlette.requests import Request
from starlette.responses import Response

from cutout_mcp.core.outputs.downloads import DownloadError, Downloads
from tests.netfakes import FakeDNS, FakeNetwork, http_response, redirect
from tests.standin import RESULT, envelope, finished_job, run_recorder, run_standin

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CUTOUT_MCP = str(Path(sys.executable).with_name("cutout-mcp"))
JOB = 700842286474565
METADATA = "http://169.254.169.254/latest/meta-data/video.mp4"


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


@pytest.mark.parametrize("saving", [True, False], ids=["output-dir", "no-output-dir"])
@pytest.mark.parametrize("swap", [False, True], ids=["video-at-metadata", "video-at-loopback"])
async def test_result_and_cover_at_forbidden_addresses_are_never_fetched(
    tmp_path: Path, saving: bool, swap: bool
) -> None:
    output = tmp_path / "out"
    async with run_recorder() as recorder:
        loopback = f"http://127.0.0.1:{recorder.port}/cover.jpg"
        video_url, cover_url = (loopback, METADATA) if swap else (METADATA, loopback)

        async def result(_: Request) -> Response:
            return envelope(finished_job(JOB, video_url, cover_url))

        async with run_standin({RESULT: result}) as upstream:
            env = {
                "CUTOUT_BASE_URL": upstream.base_url,
                "CUTOUT_API_KEY": "test-key",
                "CUTOUT_STATE_DIR": str(tmp_path / "state"),
                "CUTOUT_LOG_LEVEL": "WARNING",
                "PATH": os.environ.get("PATH", ""),
            } | ({"CUTOUT_OUTPUT_DIR": str(output)} if saving else {})
            async with Client(StdioServerParameters(command=CUTOUT_MCP, env=env)) as client:
                got = await client.call_tool("get_video_result", {"id": JOB})
        assert recorder.contacted == 0, "the loopback port was contacted"
    assert got.is_error is False, text_of(got)
    job = got.structured_content
    assert job is not None
    assert (job["id"], job["status"], job["result_url"], job["cover_url"]) == (JOB, "succeeded", video_url, cover_url)
    assert job.get("local_path") is None
    assert not output.exists() or not any(output.iterdir()), "nothing is saved"
    if saving:
        assert "refused" in job["message"]
        assert "cloud metadata" in job["message"] if not swap else "loopback" in job["message"]
        assert "result_url still works" in job["message"]


async def test_a_redirect_to_a_private_address_is_refused_at_the_hop() -> None:
    """A public CDN host whose answer redirects to a private address: the second connection is refused."""
    dns = FakeDNS({"cdn.example.com": ["93.184.216.34"], "inside.example.com": ["10.0.0.5"]})
    network = FakeNetwork(
        {"93.184.216.34": redirect("http://inside.example.com/v.mp4"), "10.0.0.5": http_response(b"secret")}
    )
    downloads = Downloads(None)
    downloads.fetcher = type(downloads.fetcher)(resolver=dns, network=network)
    try:
        with pytest.raises(DownloadError, match=r"inside\.example\.com is a private address \(10\.0\.0\.5\)"):
            async with downloads.fetcher.stream("https://cdn.example.com/v.mp4", 1024):
                pass
    finally:
        await downloads.aclose()
    assert network.connections == [("93.184.216.34", 443)], "the private address was never connected to"


async def test_a_result_that_is_a_web_page_is_not_saved(tmp_path: Path) -> None:
    dns = FakeDNS({"cdn.example.com": ["93.184.216.34"]})
    page = http_response(b"<html>login</html>", content_type="text/html")
    downloads = Downloads(tmp_path)
    downloads.fetcher = type(downloads.fetcher)(resolver=dns, network=FakeNetwork({"93.184.216.34": page}))
    try:
        with pytest.raises(DownloadError, match="the answer is text/html, not a picture or video"):
            await downloads.save("http://cdn.example.com/v.mp4", "video-1", "video")
    finally:
        await downloads.aclose()
    assert [path async for path in anyio.Path(tmp_path).iterdir()] == []
