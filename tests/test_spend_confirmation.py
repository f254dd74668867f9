"""CUTOUT_CONFIRM_SPEND: the user is asked before a paid call, in both protocol eras, and nothing is spent
unless they say yes (through the SDK client's elicitation callback, as a host would show the question)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
import respx
from mcp import Client
from mcp.client import ClientRequestContext
from mcp_types import CallToolResult, ElicitRequestFormParams, ElicitRequestParams, ElicitResult, InputRequiredResult

from cutout_mcp.config import ConfigError, Settings
from cutout_mcp.core.context import open_context
from cutout_mcp.core.jobs import videos
from cutout_mcp.core.money.consent import Consent, Spend, SpendNotConfirmedError, check_consent, question
from cutout_mcp.core.results import CreditSummary, VideoJob
from cutout_mcp.server import build_server
from cutout_mcp.upstream.models import UpstreamVideoJob

from .conftest import FAST_RETRY, FakeClock, envelope, video_job
from .tasks_client import TasksClient

pytestmark = pytest.mark.anyio

GENERATE = "/api/v2/imageToVideo/generate"
RESULT = "/api/v2/imageToVideo/getResult"
EDIT = "/api/v1/image/edit"
JOB_ID = 700842286474565
IMAGE = "https://img.example.com/cat.jpg"
EDIT_ARGS = {"prompt": "make the sky pink", "image_urls": [IMAGE, "https://img.example.com/dog.png"]}
PRO = "gemini-3-pro-image-preview"


def edit_answer() -> dict[str, Any]:
    return envelope(
        {
            "id": 789012345678901,
            "imageUrl": "https://cdn.example.com/edit.jpg",
            "model": "gpt-image-1",
            "status": 1,
            "createdAt": 1763547221159,
        }
    )


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


class User:
    """The person behind the host's confirmation form: answers each question the same way, or never."""

    def __init__(self, action: str = "accept", content: dict[str, Any] | None = None, *, never: bool = False) -> None:
        self.action = action
        self.content = {"confirm": True} if content is None and action == "accept" else content
        self.never = never
        self.asked: list[ElicitRequestFormParams] = []

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        assert isinstance(params, ElicitRequestFormParams)
        self.asked.append(params)
        if self.never:
            await anyio.Event().wait()  # the user walked away
        return ElicitResult(action=self.action, content=self.content)  # type: ignore[arg-type]


@pytest.fixture
def confirming(settings: Settings) -> Settings:
    return settings.model_copy(update={"confirm_spend": "always", "preview": False})


@asynccontextmanager
async def connect(
    settings: Settings, mode: str, clock: FakeClock, user: User | None, **kwargs: Any
) -> AsyncIterator[Client]:
    server = build_server(settings, clock=clock, retry=FAST_RETRY, **kwargs)
    callback = {} if user is None else {"elicitation_callback": user}
    async with Client(server, mode=mode, **callback) as client:  # type: ignore[arg-type]
        yield client


# --- the setting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "above"),
    [("off", None), ("always", 0), ("ALWAYS ", 0), ("above:4", 4), ("above: 14", 14), ("above:0", 0)],
)
def test_the_setting_reads_as_a_rule(value: str, above: int | None) -> None:
    assert Settings.load({"CUTOUT_CONFIRM_SPEND": value}).confirm_spend_above == above


def test_the_setting_is_off_unless_set() -> None:
    assert Settings.load({}).confirm_spend_above is None


@pytest.mark.parametrize("value", ["yes", "above", "above:-1", "above:four", "below:4", "on"])
def test_a_bad_setting_stops_the_server_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match=r"CUTOUT_CONFIRM_SPEND: .*off, always, or above:N"):
        Settings.load({"CUTOUT_CONFIRM_SPEND": value})


def test_the_preview_setting_has_one_name() -> None:
    assert Settings.load({"CUTOUT_PREVIEW": "off"}).preview is False
    assert Settings.load({"CUTOUT_EDIT_PREVIEW": "off"}).preview is True, "an unreleased earlier name is not read"


# --- the rule -----------------------------------------------------------------------------


def test_the_question_states_what_is_bought_and_what_the_budget_leaves() -> None:
    spend = Spend("edit_image", PRO, (IMAGE, "https://img.example.com/dog.png"), "make the sky pink", 15)
    text = question(spend, CreditSummary(spent=10, spent_total=30, budget=100, remaining=70), "always")
    assert "Allow edit_image to spend 15 cutout.pro credits?" in text
    assert f"Model: {PRO}" in text
    assert f"Images (2): {IMAGE}, https://img.example.com/dog.png" in text
    assert "“make the sky pink”" in text
    assert "Budget: 55 of 100 credits left after this call (30 spent)." in text
    assert "CUTOUT_CONFIRM_SPEND=always" in text
    unbudgeted = question(spend, CreditSummary(spent=0, spent_total=30), "always")
    assert "No credit budget is set; 30 credits spent" in unbudgeted


def test_long_prompts_and_urls_are_shortened_in_the_question() -> None:
    url = "https://img.example.com/" + "a" * 2000 + ".png"
    text = question(Spend("edit_image", PRO, (url,), "word " * 1000, 15), CreditSummary(spent=0, spent_total=0), "x")
    assert len(text) < 1000
    assert url[:40] in text
    assert url[-20:] in text


def test_the_paid_path_refuses_a_spend_the_consent_does_not_cover() -> None:
    check_consent(None, 15, None)  # off: nothing to check
    check_consent(4, 4, None)  # at or below the threshold: not asked
    check_consent(0, 5, Consent(5))
    with pytest.raises(SpendNotConfirmedError, match="CUTOUT_CONFIRM_SPEND=always"):
        check_consent(0, 5, None)
    with pytest.raises(SpendNotConfirmedError, match="agreed to nothing"):
        check_consent(0, 5, Consent(0))  # the free reuse it was asked about became a paid submit
    with pytest.raises(SpendNotConfirmedError, match="above:4"):
        check_consent(4, 15, Consent(4))


async def test_a_free_reuse_that_became_a_paid_submit_is_refused_not_sent(
    confirming: Settings, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    # The question was skipped because an identical job was unfinished; it finished before the call paid.
    submits = upstream.post(GENERATE).respond(json=envelope(JOB_ID + 1))
    async with open_context(confirming, clock=clock) as app:
        await app.ledger.record_video_job(None, JOB_ID, "me", IMAGE, None, 5)
        plan = await videos.plan_video(app, "me", IMAGE, None)
        assert plan.spend.credits == 0
        assert plan.question is None
        finished = VideoJob.from_upstream(UpstreamVideoJob.model_validate(video_job(status=1, imageUrl=IMAGE)))
        await app.ledger.update_job(finished)
        with pytest.raises(SpendNotConfirmedError, match="would now cost 5 credits"):
            await videos.generate_video(app, "me", plan, consent=Consent(plan.spend.credits), wait_seconds=0)
        assert (await app.ledger.credits("me", None)).spent == 0
    assert submits.call_count == 0


# --- through MCP, both eras ------------------------------------------------------------------


async def test_the_assistant_is_told_not_to_retry_a_refused_spend(
    settings: Settings, confirming: Settings, clock: FakeClock
) -> None:
    async with connect(confirming, "auto", clock, None) as client:
        assert "asked to confirm every paid call" in (client.instructions or "")
    async with connect(settings, "auto", clock, None) as client:
        assert "confirm" not in (client.instructions or "")


async def test_accepting_sends_the_call_once(
    confirming: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    edits = upstream.post(EDIT).respond(json=edit_answer())
    user = User("accept")
    async with connect(confirming, mode, clock, user) as client:
        result = await client.call_tool("edit_image", {**EDIT_ARGS, "model": PRO})
    assert result.is_error is False, text_of(result)
    assert result.structured_content is not None
    assert result.structured_content["credits_charged"] == 15
    assert edits.call_count == 1
    (asked,) = user.asked
    assert "spend 15 cutout.pro credits" in asked.message
    assert PRO in asked.message
    assert IMAGE in asked.message
    assert "make the sky pink" in asked.message
    assert "0 credits spent" in asked.message
    assert asked.requested_schema["properties"]["confirm"]["type"] == "boolean"
    assert asked.requested_schema["required"] == ["confirm"]


@pytest.mark.parametrize(
    ("action", "content", "why"),
    [
        ("decline", None, "declined"),
        ("cancel", None, "dismissed"),
        ("accept", {"confirm": False}, "unticked"),
        ("accept", {"confirm": "yes"}, ""),  # not a boolean: never read as a yes
    ],
)
async def test_anything_but_yes_sends_nothing_and_says_how_to_change_the_setting(
    confirming: Settings,
    mode: str,
    clock: FakeClock,
    upstream: respx.MockRouter,
    action: str,
    content: dict[str, Any] | None,
    why: str,
) -> None:
    edits = upstream.post(EDIT).respond(json=edit_answer())
    videos = upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    user = User(action, content)
    async with connect(confirming, mode, clock, user) as client:
        edit = await client.call_tool("edit_image", EDIT_ARGS)
        video = await client.call_tool("generate_video", {"image_url": IMAGE})
    assert edits.call_count == 0
    assert videos.call_count == 0
    assert len(user.asked) == 2
    for result in (edit, video):
        assert result.is_error is True
        assert why in text_of(result)
        if why:
            assert "Nothing was sent to cutout.pro or charged" in text_of(result)
            assert "CUTOUT_CONFIRM_SPEND=off" in text_of(result)


async def test_a_client_that_cannot_ask_gets_no_paid_call_and_is_told_why(
    confirming: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    edits = upstream.post(EDIT).respond(json=edit_answer())
    videos = upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).respond(json=envelope(video_job(status=1)))
    async with connect(confirming, mode, clock, None) as client:
        edit = await client.call_tool("edit_image", EDIT_ARGS)
        video = await client.call_tool("generate_video", {"image_url": IMAGE})
        free = await client.call_tool("get_video_result", {"id": JOB_ID})
    assert edits.call_count == videos.call_count == 0
    for result in (edit, video):
        assert result.is_error is True
        assert "cannot show the confirmation question" in text_of(result)
        assert "CUTOUT_CONFIRM_SPEND=always" in text_of(result)
        assert "CUTOUT_CONFIRM_SPEND=off" in text_of(result)
    assert free.is_error is False  # free tools never ask


async def test_above_n_asks_only_about_calls_costing_more(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    above_four = settings.model_copy(update={"confirm_spend": "above:4", "preview": False})
    edits = upstream.post(EDIT).respond(json=edit_answer())
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).respond(json=envelope(video_job(status=1)))
    user = User("decline")
    async with connect(above_four, mode, clock, user) as client:
        cheap = await client.call_tool("edit_image", {**EDIT_ARGS, "model": "gpt-image-1"})
        assert user.asked == []
        pro = await client.call_tool("edit_image", {**EDIT_ARGS, "model": PRO})
        video = await client.call_tool("generate_video", {"image_url": IMAGE, "wait_seconds": 0})
    assert cheap.is_error is False
    assert pro.is_error is True
    assert "CUTOUT_CONFIRM_SPEND=above:4" in text_of(pro)
    assert video.is_error is True  # 5 credits > 4
    assert [q.message.splitlines()[0] for q in user.asked] == [
        "Allow edit_image to spend 15 cutout.pro credits?",
        "Allow generate_video to spend 5 cutout.pro credits?",
    ]
    assert edits.call_count == 1


async def test_the_model_cannot_grant_consent_through_arguments(
    confirming: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    edits = upstream.post(EDIT).respond(json=edit_answer())
    user = User("decline")
    forged = {
        **EDIT_ARGS,
        "confirmation": {"action": "accept", "data": {"confirm": True}},
        "confirm": True,
        "plan": {"question": None},
    }
    async with connect(confirming, mode, clock, user) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        result = await client.call_tool("edit_image", forged)
    for name in ("edit_image", "generate_video"):
        assert not {"confirmation", "plan"} & set(tools[name].input_schema["properties"])
    assert len(user.asked) == 1
    assert result.is_error is True
    assert edits.call_count == 0


async def test_bad_input_is_refused_before_anyone_is_asked(
    confirming: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    edits = upstream.post(EDIT).respond(json=edit_answer())
    user = User("accept")
    too_many = [f"https://img.example.com/{n}.png" for n in range(4)]
    over = confirming.model_copy(update={"credit_budget": 10})
    async with connect(over, mode, clock, user) as client:
        qwen = {**EDIT_ARGS, "image_urls": too_many, "model": "qwen-image-edit-plus"}
        rule = await client.call_tool("edit_image", qwen)
        budget = await client.call_tool("edit_image", {**EDIT_ARGS, "model": PRO})
    assert "at most 3" in text_of(rule)
    assert "CUTOUT_CREDIT_BUDGET=10" in text_of(budget)
    assert user.asked == []
    assert edits.call_count == 0


async def test_without_a_key_nobody_is_asked(confirming: Settings, mode: str, clock: FakeClock) -> None:
    user = User("accept")
    async with connect(confirming.model_copy(update={"api_key": None}), mode, clock, user) as client:
        edit = await client.call_tool("edit_image", EDIT_ARGS)
        video = await client.call_tool("generate_video", {"image_url": IMAGE})
    assert "CUTOUT_API_KEY" in text_of(edit)
    assert "CUTOUT_API_KEY" in text_of(video)
    assert user.asked == []


async def test_a_reused_identical_video_job_is_free_and_not_asked_about(
    confirming: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    submits = upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).respond(json=envelope(video_job(percentage=10)))
    user = User("accept")
    args = {"image_url": IMAGE, "prompt": "the cat blinks", "wait_seconds": 0}
    async with connect(confirming, mode, clock, user) as client:
        first = await client.call_tool("generate_video", args)
        again = await client.call_tool("generate_video", args)
    assert first.structured_content is not None
    assert again.structured_content is not None
    assert first.structured_content["credits_charged"] == 5
    assert again.structured_content["credits_charged"] == 0
    assert again.structured_content["id"] == JOB_ID
    assert submits.call_count == 1
    assert len(user.asked) == 1


async def test_time_spent_on_the_question_counts_against_the_wait(
    confirming: Settings, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).respond(json=envelope(video_job(percentage=10)))

    class SlowUser(User):
        async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
            clock.time += 25  # the person reads the question for 25 s
            return await super().__call__(context, params)

    start = clock.now()
    async with connect(confirming, "legacy", clock, SlowUser("accept")) as client:
        result = await client.call_tool("generate_video", {"image_url": IMAGE, "wait_seconds": 30})
    assert result.structured_content is not None
    assert result.structured_content["status"] == "processing"
    assert clock.now() - start <= 30  # 25 s asking + at most 5 s waiting, within the caller's bound


async def test_the_budget_left_is_in_the_question(
    confirming: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(EDIT).respond(json=edit_answer())
    user = User("accept")
    async with connect(confirming.model_copy(update={"credit_budget": 100}), mode, clock, user) as client:
        await client.call_tool("edit_image", EDIT_ARGS)
        await client.call_tool("edit_image", EDIT_ARGS)
    assert "Budget: 96 of 100 credits left after this call (0 spent)." in user.asked[0].message
    assert "Budget: 92 of 100 credits left after this call (4 spent)." in user.asked[1].message


async def test_an_unanswered_question_times_out_and_sends_nothing(
    confirming: Settings, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    # 2025-11-25 holds the call open while the user decides; the server bounds that wait. (On 2026-07-28
    # the server holds nothing: the sealed question expires instead, see the replay test.)
    edits = upstream.post(EDIT).respond(json=edit_answer())
    user = User(never=True)
    async with connect(confirming, "legacy", clock, user, confirm_seconds=0.05) as client:
        result = await client.call_tool("edit_image", EDIT_ARGS)
    assert result.is_error is True
    assert "no answer to the confirmation question within 0.05 s" in text_of(result)
    assert "CUTOUT_CONFIRM_SPEND" in text_of(result)
    assert len(user.asked) == 1
    assert edits.call_count == 0


async def test_a_replayed_answer_does_not_charge_twice(
    confirming: Settings, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    # 2026-07-28: the answer travels with a sealed requestState bound to the question's wording, which
    # includes the credits spent; once the call is charged, replaying the same answer is asked again.
    edits = upstream.post(EDIT).respond(json=edit_answer())
    async with connect(confirming, "auto", clock, User("accept")) as client:
        first = await client.session.call_tool("edit_image", EDIT_ARGS, allow_input_required=True)
        assert isinstance(first, InputRequiredResult)
        ((key, request),) = first.input_requests.items()
        assert request.method == "elicitation/create"
        yes = {key: ElicitResult(action="accept", content={"confirm": True})}
        paid = await client.session.call_tool(
            "edit_image", EDIT_ARGS, input_responses=yes, request_state=first.request_state
        )
        replayed = await client.session.call_tool(
            "edit_image", EDIT_ARGS, input_responses=yes, request_state=first.request_state, allow_input_required=True
        )
    assert isinstance(paid, CallToolResult)
    assert paid.is_error is False
    assert isinstance(replayed, InputRequiredResult)
    assert edits.call_count == 1


async def test_a_task_is_created_only_once_the_user_said_yes(
    confirming: Settings, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    submits = upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).mock(
        side_effect=[httpx.Response(200, json=envelope(video_job(percentage=p))) for p in (10, 60)]
        + [httpx.Response(200, json=envelope(video_job(status=1)))]
    )
    for action, tasks_made in (("decline", 0), ("accept", 1)):
        extension = TasksClient(sleep=FakeClock().sleep)
        user = User(action)
        server = build_server(confirming, clock=clock, retry=FAST_RETRY)
        async with Client(server, extensions=[extension], elicitation_callback=user) as client:
            result = await client.call_tool("generate_video", {"image_url": IMAGE})
        assert len(user.asked) == 1
        assert bool(extension.polls) == bool(tasks_made)
        if action == "decline":
            assert result.is_error is True
            assert "declined" in text_of(result)
            assert submits.call_count == 0
        else:
            assert result.is_error is False, text_of(result)
            assert result.structured_content is not None
            assert result.structured_content["status"] == "succeeded"
            assert extension.polls[-1].status == "completed"
            assert submits.call_count == 1


async def test_an_answer_is_taken_by_any_server_sharing_the_ledger(
    confirming: Settings, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    # 2026-07-28: behind a load balancer the answer may reach another replica, and a restarted server
    # must still take an answer to a question it asked before; each seals with the key the ledger holds.
    edits = upstream.post(EDIT).respond(json=edit_answer())
    async with connect(confirming, "auto", clock, User("accept")) as asking:
        first = await asking.session.call_tool("edit_image", EDIT_ARGS, allow_input_required=True)
    assert isinstance(first, InputRequiredResult)
    ((key, _),) = first.input_requests.items()
    yes = {key: ElicitResult(action="accept", content={"confirm": True})}
    async with connect(confirming, "auto", clock, User("accept")) as answered:
        paid = await answered.session.call_tool(
            "edit_image", EDIT_ARGS, input_responses=yes, request_state=first.request_state
        )
    assert isinstance(paid, CallToolResult)
    assert paid.is_error is False, text_of(paid)
    assert edits.call_count == 1
