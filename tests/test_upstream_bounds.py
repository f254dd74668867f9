"""Every cutout.pro answer is bounded: a 50 MB answer that is not JSON neither fills the server's memory
nor is fetched again, and the next call works.

The real `cutout-mcp` process (stdio) reads a job from a stand-in cutout.pro on loopback that answers
50 MB of HTML, streamed without a declared length. The server process's peak resident memory
(`VmHWM`) is read from /proc and compared with its resident memory when idle.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from cutout_mcp.upstream.client import MAX_ANSWER_BYTES
from tests.standin import RESULT, envelope, finished_job, run_standin

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CUTOUT_MCP = str(Path(sys.executable).with_name("cutout-mcp"))
JOB = 700842286474565
MB = 1024 * 1024
ANSWER_MB = 50
HEADROOM_MB = 20


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def server_pid() -> int:
    """The `cutout-mcp` child of this test process (the stdio client spawned it)."""
    mine = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == mine and b"cutout-mcp" in cmdline:
            return int(entry.name)
    raise AssertionError("no cutout-mcp child process found")


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc (Linux)")
async def test_a_50_mb_answer_that_is_not_json_is_capped_not_retried_and_the_next_call_works(tmp_path: Path) -> None:
    answers = {"huge": True}

    async def result(_: Request) -> Response:
        if not answers["huge"]:
            return envelope(finished_job(JOB, "", "") | {"status": 0, "percentage": 10, "resultUrl": "", "cover": ""})

        async def body() -> AsyncIterator[bytes]:
            block = b"<html>" + b"x" * (MB - 6)
            for _ in range(ANSWER_MB):
                yield block

        return StreamingResponse(body(), media_type="text/html")

    async with run_standin({RESULT: result}) as upstream:
        env = {
            "CUTOUT_BASE_URL": upstream.base_url,
            "CUTOUT_API_KEY": "test-key",
            "CUTOUT_STATE_DIR": str(tmp_path / "state"),
            "CUTOUT_PREVIEW": "off",
            "CUTOUT_LOG_LEVEL": "WARNING",
            "PATH": os.environ.get("PATH", ""),
        }
        async with Client(StdioServerParameters(command=CUTOUT_MCP, env=env)) as client:
            pid = server_pid()
            answers["huge"] = False
            warm = await client.call_tool("get_video_result", {"id": JOB})  # every client and pool made once
            assert warm.is_error is False, text_of(warm)
            idle_kb = memory_kb(pid, "VmRSS")
            answers["huge"] = True
            upstream.hits.clear()
            refused = await client.call_tool("get_video_result", {"id": JOB})
            peak_kb = memory_kb(pid, "VmHWM")
            huge_reads = upstream.hits[RESULT]
            answers["huge"] = False
            after = await client.call_tool("get_video_result", {"id": JOB})
    assert refused.is_error is True
    message = text_of(refused)
    assert f"larger than {MAX_ANSWER_BYTES // MB} MiB" in message, message
    assert huge_reads == 1, "a 200 answer that is not the documented JSON is not fetched again"
    growth_mb = (peak_kb - idle_kb) / 1024
    print(
        f"idle {idle_kb / 1024:.1f} MB, peak {peak_kb / 1024:.1f} MB, growth {growth_mb:.1f} MB (bound {HEADROOM_MB})"
    )
    assert growth_mb <= HEADROOM_MB, f"peak memory grew {growth_mb:.1f} MB over idle under a {ANSWER_MB} MB answer"
    assert after.is_error is False, text_of(after)
    assert after.structured_content is not None
    assert after.structured_content["status"] == "processing"
