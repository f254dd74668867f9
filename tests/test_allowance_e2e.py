"""Allowances end to end: the installed `cutout-mcp` over stdio against the sandbox, on the real clock.

A duration period of a few seconds renews when the refusal said it would, and a session cap renews only
with a new client process. The sandbox's own stats (`/__sandbox__/stats`) say what reached the upstream.
Waiting is for deadlines the server named (the window's `renews_at`), never for behaviour to happen.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import TextResourceContents

from cutout_mcp.sandbox import Sandbox, SandboxConfig, run_sandbox

from .test_e2e import CUTOUT_MCP, EDIT, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PERIOD_SECONDS = 4
"""Long enough for three edits in one window on a loaded machine, short enough to wait out in a test."""
CLOCK_MARGIN = 0.05
PRICE = 4
NOTHING_SENT = "Nothing was sent to cutout.pro or charged."


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with run_sandbox(SandboxConfig(queue_seconds=0, job_seconds=1.0, video_format="gif")) as running:
        yield running


def server(sandbox: Sandbox, tmp_path: Path, **limits: str) -> StdioServerParameters:
    """The installed command over stdio, pointed at the sandbox, with its ledger in the test's folder."""
    env = {
        "CUTOUT_SANDBOX": "1",
        "CUTOUT_API_KEY": sandbox.api_key,
        "CUTOUT_BASE_URL": sandbox.base_url,
        "CUTOUT_LOG_LEVEL": "WARNING",
        "CUTOUT_STATE_DIR": str(tmp_path / "state"),
        **limits,
    }
    return StdioServerParameters(command=CUTOUT_MCP, env=env)


def edit_args(sandbox: Sandbox) -> dict[str, Any]:
    return {"prompt": "warmer light", "image_urls": [sandbox.url("/samples/photo.jpg")], "model": "gpt-image-1"}


async def upstream_stats(sandbox: Sandbox) -> dict[str, Any]:
    """What the sandbox itself recorded, read from its control surface."""
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{sandbox.base_url}/__sandbox__/stats")
    answer.raise_for_status()
    stats: dict[str, Any] = answer.json()
    return stats


async def allowance_share(client: Client) -> dict[str, Any]:
    read = await client.read_resource("cutout://credits")
    content = read.contents[0]
    assert isinstance(content, TextResourceContents)
    share: dict[str, Any] = json.loads(content.text)["allowance"]
    return share


def epoch_of(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def until(deadline: float) -> None:
    """Wait for the wall clock to pass `deadline`, a moment the server named; bounded by one period.

    A server's clock is the wall time at its start plus monotonic time since, which may stray from this
    process's wall clock by a few milliseconds: CLOCK_MARGIN past the deadline is past it for both."""
    with anyio.fail_after(PERIOD_SECONDS + 2):
        while time.time() < deadline + CLOCK_MARGIN:  # noqa: ASYNC110 - a wall-clock deadline, not an event
            await anyio.sleep(max(0.0, deadline + CLOCK_MARGIN - time.time()))


async def test_a_few_second_allowance_refuses_past_its_limit_and_renews_when_the_refusal_said(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    args = edit_args(sandbox)
    with anyio.fail_after(40):
        async with Client(server(sandbox, tmp_path, CUTOUT_ALLOWANCE=f"8/{PERIOD_SECONDS}s")) as client:
            share = await allowance_share(client)
            assert (share["credits"], share["period"], share["left"]) == (8, f"{PERIOD_SECONDS}s", 8)
            window_end = epoch_of(share["renews_at"])
            assert window_end % PERIOD_SECONDS == 0, "duration windows are aligned to the Unix epoch"
            await until(window_end)  # start at a window's beginning, so the three calls share one window
            fitted = [await client.call_tool("edit_image", args) for _ in range(2)]
            refused = await client.call_tool("edit_image", args)
            before_renewal = await upstream_stats(sandbox)
            named = re.search(r"It renews at (\S+Z)\.", text_of(refused))
            assert named is not None, text_of(refused)
            await until(epoch_of(named.group(1)))
            renewed = await client.call_tool("edit_image", args)
            after = await allowance_share(client)
    assert [result.is_error for result in fitted] == [False, False], [text_of(result) for result in fitted]
    assert [result.structured_content["credits_charged"] for result in fitted] == [PRICE, PRICE]
    assert refused.is_error is True
    message = text_of(refused)
    assert f"this call costs {PRICE} credits" in message
    assert f"local's allowance of 8 credits per {PERIOD_SECONDS}s has 0 left (8 used this period)" in message
    assert epoch_of(named.group(1)) == window_end + PERIOD_SECONDS, "the window the two calls were made in"
    assert NOTHING_SENT in message
    assert (before_renewal["charges"], before_renewal["requests"].get(EDIT)) == (2, 2), "the refusal sent nothing"
    assert renewed.is_error is False, text_of(renewed)
    assert (after["used"], after["left"]) == (PRICE, 8 - PRICE), "the new window counts only the new call"
    stats = await upstream_stats(sandbox)
    accepted = {result.structured_content["id"] for result in [*fitted, renewed]}
    assert (stats["charges"], stats["credits_spent"], stats["requests"][EDIT]) == (3, 3 * PRICE, 3)
    assert {edit["id"] for edit in stats["edits"]} == accepted, "the upstream saw exactly the calls that fit"


async def test_the_session_cap_resets_with_a_new_client_process_only(sandbox: Sandbox, tmp_path: Path) -> None:
    args = edit_args(sandbox)
    capped = server(sandbox, tmp_path, CUTOUT_SESSION_CREDITS="8")
    with anyio.fail_after(40):
        async with Client(capped) as first:
            fitted = [await first.call_tool("edit_image", args) for _ in range(2)]
            refused = await first.call_tool("edit_image", args)
            still = await first.call_tool("edit_image", args)
        assert (await upstream_stats(sandbox))["charges"] == 2
        async with Client(capped) as second:  # a new process over stdio: a new session, the same ledger
            fresh = await second.call_tool("edit_image", args)
            share = await allowance_share(second)
    assert [result.is_error for result in fitted] == [False, False], [text_of(result) for result in fitted]
    for attempt in (refused, still):  # the cap does not renew by itself within the session
        assert attempt.is_error is True
        message = text_of(attempt)
        assert "the session cap of 8 credits has 0 left (8 used in this session)" in message
        assert f"this call costs {PRICE} credits" in message
        assert "renews only with a new session" in message
        assert NOTHING_SENT in message
    assert fresh.is_error is False, text_of(fresh)
    assert (share["session_used"], share["session_left"]) == (PRICE, 8 - PRICE)
    stats = await upstream_stats(sandbox)
    accepted = {result.structured_content["id"] for result in [*fitted, fresh]}
    assert (stats["charges"], stats["requests"][EDIT]) == (3, 3)
    assert {edit["id"] for edit in stats["edits"]} == accepted
