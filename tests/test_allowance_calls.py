"""Allowances through the tools, as a caller meets them: a refusal names the limit before anything is
sent, unknown outcomes count, released reservations do not (the rate included), the session cap resets
only with a new session, and each caller sees their own share.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from mcp.types import TextResourceContents

from cutout_mcp.config import Settings
from cutout_mcp.core import edits
from cutout_mcp.core.context import open_context
from cutout_mcp.core.storage import AllowanceExceededError
from cutout_mcp.upstream.errors import CutoutError

from .conftest import FAST_RETRY, FakeClock, connect
from .test_tools import EDIT, IMAGE, edit_answer, text_of

pytestmark = pytest.mark.anyio

EDIT_ARGS = {"prompt": "make it blue", "image_urls": [IMAGE], "model": "gpt-image-1"}


def limited(settings: Settings, **limits: Any) -> Settings:
    return settings.model_copy(update=limits)


async def test_a_refused_call_names_its_limit_and_sends_nothing(
    settings: Settings, upstream: respx.MockRouter, clock: FakeClock
) -> None:
    edit = upstream.post(EDIT).respond(json=edit_answer())
    async with connect(limited(settings, allowance="8/day"), "legacy", clock) as client:
        for _ in range(2):
            assert not (await client.call_tool("edit_image", EDIT_ARGS)).is_error
        refused = await client.call_tool("edit_image", EDIT_ARGS)
    assert refused.is_error
    message = text_of(refused)
    assert "local's allowance of 8 credits per day has 0 left (8 used this period)" in message
    assert "this call costs 4 credits" in message
    assert "renews at 1970-01-02T00:00:00Z" in message
    assert "Nothing was sent to cutout.pro or charged." in message
    assert edit.call_count == 2


async def test_unknown_outcomes_count_and_released_calls_do_not(settings: Settings, upstream: respx.MockRouter) -> None:
    answers = iter(
        [
            httpx.ConnectError("refused"),  # never reached cutout.pro: released
            httpx.ConnectError("refused"),
            httpx.ConnectError("refused"),
            httpx.Response(502),  # reached it, outcome unknown: counted
            httpx.ReadTimeout("slow"),
        ]
    )
    upstream.post(EDIT).mock(side_effect=lambda request: _answer(next(answers)))
    policy = limited(settings, paid_calls_per_minute=2, allowance="100/day")
    async with open_context(policy, clock=FakeClock(), retry=FAST_RETRY) as app:
        plan = await edits.plan_edit(app, "local", "make it blue", [IMAGE], "gpt-image-1")
        with pytest.raises(CutoutError) as failed:  # its three connect attempts are all refused
            await edits.edit_image(app, "local", plan)
        assert not failed.value.may_have_charged
        for _ in range(2):
            plan = await edits.plan_edit(app, "local", "make it blue", [IMAGE], "gpt-image-1")
            with pytest.raises(CutoutError) as unknown:
                await edits.edit_image(app, "local", plan)
            assert unknown.value.may_have_charged
        share = (await app.ledger.credits("local", None, app.paid.limits("local", app.session))).allowance
        plan = await edits.plan_edit(app, "local", "make it blue", [IMAGE], "gpt-image-1")
        with pytest.raises(AllowanceExceededError) as refused:
            await edits.edit_image(app, "local", plan)
    assert share is not None
    assert share.used == 8, "the two unknown outcomes count; the refused connects do not"
    assert refused.value.limit == "rate"


def _answer(outcome: httpx.Response | Exception) -> httpx.Response:
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def test_the_session_cap_resets_with_a_new_session_only(
    settings: Settings, upstream: respx.MockRouter, clock: FakeClock
) -> None:
    edit = upstream.post(EDIT).respond(json=edit_answer())
    capped = limited(settings, session_credits=8)
    async with connect(capped, "legacy", clock) as client:
        for _ in range(2):
            assert not (await client.call_tool("edit_image", EDIT_ARGS)).is_error
        refused = await client.call_tool("edit_image", EDIT_ARGS)
        listed = (await client.call_tool("list_video_jobs", {})).structured_content
    assert refused.is_error
    assert "the session cap of 8 credits has 0 left (8 used in this session)" in text_of(refused)
    assert listed is not None
    assert listed["credits"]["allowance"]["session_used"] == 8
    assert listed["credits"]["allowance"]["session_left"] == 0
    async with connect(capped, "legacy", clock) as client:  # a new client connection: a new session
        assert not (await client.call_tool("edit_image", EDIT_ARGS)).is_error
        read = await client.read_resource("cutout://credits")
    assert edit.call_count == 3
    content = read.contents[0]
    assert isinstance(content, TextResourceContents)
    share = json.loads(content.text)["allowance"]
    assert (share["session_used"], share["session_left"], share["credits"]) == (4, 4, None)


async def test_the_spend_question_says_what_the_allowance_leaves(
    settings: Settings, upstream: respx.MockRouter, tmp_path: Path
) -> None:
    policy = tmp_path / "allowances.toml"
    policy.write_text('[default]\ncredits = 20\nperiod = "week"\nsession_credits = 12\n')
    upstream.post(EDIT).respond(json=edit_answer())
    asking = limited(settings, allowances_file=policy, confirm_spend="always")
    async with open_context(asking, clock=FakeClock(), retry=FAST_RETRY) as app:
        plan = await edits.plan_edit(app, "local", "make it blue", [IMAGE], "gpt-image-1", session="s1")
    assert plan.question is not None
    assert "Your allowance: 16 of 20 credits left this week after this call (renews 1970-01-05T00:00:00Z)." in (
        plan.question
    )
    assert "This session: 8 of 12 credits left after this call." in plan.question
