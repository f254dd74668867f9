"""Stopping the real `cutout-mcp` process while a paid `generate_video` is in flight loses nothing.

A stand-in cutout.pro on loopback holds the submit until the test has sent the signal. SIGTERM lets
the call finish within CUTOUT_SHUTDOWN_GRACE: the caller gets its job id (stdio and streamable HTTP),
the process exits cleanly, and an identical retry on a restarted server is answered at once from
the ledger, paying nothing. SIGKILL cannot be drained: the restarted server sees that the dead
process held the request's guard (same machine, pid gone), removes the guard, and answers the retry
at once with "possibly charged, here is how to find it" instead of waiting out the lease.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from starlette.requests import Request
from starlette.responses import Response

from cutout_mcp.core.storage import FILE_NAME
from tests.standin import GENERATE, RESULT, StandIn, envelope, finished_job, run_standin

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CUTOUT_MCP = str(Path(sys.executable).with_name("cutout-mcp"))
JOB = 700842286474565
IMAGE = "https://img.example.com/cat.jpg"
PROMPT = "the cat blinks"
RETRY_BOUND = 10.0
"""The old behaviour waited out the guard's lease (90 s by default); the promise is an answer at once."""


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


class SlowUpstream:
    """A submit that arrives, then waits for the test to let it answer."""

    def __init__(self) -> None:
        self.arrived = anyio.Event()
        self.release = anyio.Event()

    async def generate(self, _: Request) -> Response:
        self.arrived.set()
        await self.release.wait()
        return envelope(JOB)

    async def result(self, _: Request) -> Response:
        job = finished_job(JOB, "", "") | {"status": 0, "percentage": 5, "originalPrompt": PROMPT}
        return envelope(job)


def environment(upstream: StandIn, state: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "CUTOUT_BASE_URL": upstream.base_url,
        "CUTOUT_API_KEY": "test-key",
        "CUTOUT_STATE_DIR": str(state),
        "CUTOUT_PREFLIGHT": "off",
        "CUTOUT_PREVIEW": "off",
        "CUTOUT_LOG_LEVEL": "WARNING",
    }


def child_pid() -> int:
    mine = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat, cmdline = (entry / "stat").read_text(), (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == mine and b"cutout-mcp" in cmdline:
                return int(entry.name)
    raise AssertionError("no cutout-mcp child process")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def http_server(env: dict[str, str]) -> AsyncIterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped in finally
        [CUTOUT_MCP, "--transport", "streamable-http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with anyio.fail_after(30):
            while True:
                try:
                    await (await anyio.connect_tcp("127.0.0.1", port)).aclose()
                    break
                except OSError:
                    await anyio.sleep(0.05)
        yield process, f"http://127.0.0.1:{port}/mcp"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


async def call_during_stop(client: Client, slow: SlowUpstream, stop: Any) -> Any:
    """generate_video (default wait) with the stop sent while its submit is at the upstream."""
    await client.list_tools()
    answer: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:

        async def call() -> None:
            answer["result"] = await client.call_tool("generate_video", {"image_url": IMAGE, "prompt": PROMPT})

        tg.start_soon(call)
        await slow.arrived.wait()
        stop()
        await anyio.sleep(0.3)  # the signal is handled while the submit is still in flight
        slow.release.set()
    return answer["result"]


async def retry_on_restart(env: dict[str, str]) -> tuple[Any, float]:
    async with Client(StdioServerParameters(command=CUTOUT_MCP, env=env)) as client:
        began = time.monotonic()
        again = await client.call_tool("generate_video", {"image_url": IMAGE, "prompt": PROMPT, "wait_seconds": 0})
        return again, time.monotonic() - began


def assert_job_answered(result: Any) -> None:
    assert result.is_error is False, text_of(result)
    job = result.structured_content
    assert job is not None
    assert job["id"] == JOB
    assert job["credits_charged"] == 5


async def test_sigterm_on_stdio_answers_the_paid_call_in_flight_and_the_retry_pays_nothing(tmp_path: Path) -> None:
    slow = SlowUpstream()
    async with run_standin({GENERATE: slow.generate, RESULT: slow.result}) as upstream:
        env = environment(upstream, tmp_path / "state")
        async with Client(StdioServerParameters(command=CUTOUT_MCP, env=env)) as client:
            pid = child_pid()
            result = await call_during_stop(client, slow, lambda: os.kill(pid, signal.SIGTERM))
        assert_job_answered(result)
        again, seconds = await retry_on_restart(env)
    print(f"retry after restart answered in {seconds:.2f} s")
    assert again.is_error is False, text_of(again)
    assert again.structured_content is not None
    assert (again.structured_content["id"], again.structured_content["credits_charged"]) == (JOB, 0)
    assert upstream.hits[GENERATE] == 1, "paid once"
    assert seconds < RETRY_BOUND


async def test_sigterm_on_streamable_http_answers_the_paid_call_in_flight(tmp_path: Path) -> None:
    slow = SlowUpstream()
    async with run_standin({GENERATE: slow.generate, RESULT: slow.result}) as upstream:
        env = environment(upstream, tmp_path / "state")
        async with http_server(env) as (process, url):
            async with Client(url) as client:
                result = await call_during_stop(client, slow, lambda: process.send_signal(signal.SIGTERM))
            code = await anyio.to_thread.run_sync(process.wait, 20)
        assert_job_answered(result)
        assert code == 0, "a drained server exits normally"
        again, seconds = await retry_on_restart(env)
    print(f"retry after restart answered in {seconds:.2f} s")
    assert again.is_error is False, text_of(again)
    assert again.structured_content is not None
    assert (again.structured_content["id"], again.structured_content["credits_charged"]) == (JOB, 0)
    assert upstream.hits[GENERATE] == 1


async def test_a_new_call_during_the_drain_is_refused_with_nothing_sent(tmp_path: Path) -> None:
    slow = SlowUpstream()
    async with run_standin({GENERATE: slow.generate, RESULT: slow.result}) as upstream:
        env = environment(upstream, tmp_path / "state")
        async with http_server(env) as (process, url), Client(url) as client:
            await client.list_tools()
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "generate_video", {"image_url": IMAGE, "prompt": PROMPT})
                await slow.arrived.wait()
                process.send_signal(signal.SIGTERM)
                await anyio.sleep(0.3)
                other = await client.call_tool("generate_video", {"image_url": IMAGE + "?2", "prompt": PROMPT})
                slow.release.set()
    assert other.is_error is True
    assert "shutting down" in text_of(other)
    assert "nothing was sent" in text_of(other)
    assert upstream.hits[GENERATE] == 1


async def test_after_sigkill_the_retry_is_answered_at_once_and_the_dead_guard_is_removed(tmp_path: Path) -> None:
    slow = SlowUpstream()
    state = tmp_path / "state"
    async with run_standin({GENERATE: slow.generate, RESULT: slow.result}) as upstream:
        env = environment(upstream, state)

        async def killed_mid_call() -> None:
            async with Client(StdioServerParameters(command=CUTOUT_MCP, env=env)) as client:
                pid = child_pid()
                await call_during_stop(client, slow, lambda: os.kill(pid, signal.SIGKILL))

        with contextlib.suppress(Exception), anyio.move_on_after(5):  # the client loses its server mid-call
            await killed_mid_call()
        slow.release.set()
        with sqlite3.connect(state / FILE_NAME) as db:
            assert db.execute("SELECT COUNT(*) FROM guards").fetchone()[0] == 1, "the dead process held a guard"
        again, seconds = await retry_on_restart(env)
        with sqlite3.connect(state / FILE_NAME) as db:
            left = db.execute("SELECT COUNT(*) FROM guards").fetchone()[0]
    print(f"retry after SIGKILL answered in {seconds:.2f} s")
    assert again.is_error is True
    message = text_of(again)
    assert "may have been charged" in message
    assert "To find that job" in message
    assert "not charged twice" in message
    assert upstream.hits[GENERATE] == 1, "nothing was sent again"
    assert left == 0, "the dead process's guard is gone"
    assert seconds < RETRY_BOUND
