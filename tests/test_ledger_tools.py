"""The ledger through the tools: jobs survive restarts, nothing is paid twice, credits are counted."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import anyio
import httpx
import pytest
import respx

from cutout_mcp.config import Settings
from cutout_mcp.core.storage import FILE_NAME

from .conftest import FakeClock, connect, envelope, video_job
from .test_tools import EDIT, GENERATE, IMAGE, JOB_ID, RESULT, edit_answer, text_of
from .test_watch import GateClock

pytestmark = pytest.mark.anyio


def fail_writes(settings: Settings, when: str) -> None:
    """Make the real ledger file refuse one kind of write from now on, as a full or broken disk would."""
    with sqlite3.connect(settings.state_dir / FILE_NAME) as db:
        db.execute(f"CREATE TRIGGER fail_writes {when} BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")


def heal_writes(settings: Settings) -> None:
    with sqlite3.connect(settings.state_dir / FILE_NAME) as db:
        db.execute("DROP TRIGGER fail_writes")


def resource_json(result: Any) -> Any:
    return json.loads(result.contents[0].text)


async def test_a_job_is_in_the_ledger_before_its_first_poll(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    seen: list[list[tuple[int, str]]] = []

    def first_poll(request: httpx.Request) -> httpx.Response:
        with sqlite3.connect(settings.state_dir / FILE_NAME) as db:
            seen.append(db.execute("SELECT id, status FROM video_jobs").fetchall())
        return httpx.Response(200, json=envelope(video_job(percentage=10)))

    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).mock(side_effect=first_poll)
    async with connect(settings, mode, clock) as client:
        await client.call_tool("generate_video", {"image_url": IMAGE, "wait_seconds": 0})
    assert seen[0] == [(JOB_ID, "queued")], "a crash while waiting would lose nothing"


async def test_a_job_submitted_before_a_restart_is_listed_and_finished_after_it(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    polls = upstream.get(RESULT).respond(json=envelope(video_job(percentage=30)))
    async with connect(settings, mode, clock) as client:
        submitted = await client.call_tool("generate_video", {"image_url": IMAGE, "prompt": "blink", "wait_seconds": 0})
    assert submitted.structured_content["status"] == "processing"

    polls.respond(json=envelope(video_job(status=1)))
    async with connect(settings, mode, clock) as client:  # a new server process on the same state dir
        listed = (await client.call_tool("list_video_jobs", {})).structured_content
        assert [(j["id"], j["status"], j["prompt"]) for j in listed["jobs"]] == [(JOB_ID, "processing", "blink")]
        assert listed["credits"]["spent"] == 5
        assert listed["credits_charged"] == 0

        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {"cutout://jobs", "cutout://credits"} <= resources
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert "cutout://jobs/{id}" in templates

        finished = await client.call_tool("get_video_result", {"id": JOB_ID, "wait_seconds": 60})
        assert finished.structured_content["result_url"] == "https://cdn.example.com/v.mp4"

        job = resource_json(await client.read_resource(f"cutout://jobs/{JOB_ID}"))
        assert (job["status"], job["result_url"]) == ("succeeded", "https://cdn.example.com/v.mp4")
        everything = resource_json(await client.read_resource("cutout://jobs"))
        assert [j["id"] for j in everything["jobs"]] == [JOB_ID]
        assert resource_json(await client.read_resource("cutout://credits"))["spent"] == 5
        succeeded = await client.call_tool("list_video_jobs", {"status": "succeeded", "limit": 1})
        assert [j["id"] for j in succeeded.structured_content["jobs"]] == [JOB_ID]
        assert (await client.call_tool("list_video_jobs", {"status": "queued"})).structured_content["jobs"] == []


async def test_an_identical_unfinished_job_is_returned_instead_of_paying_again(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    submits = upstream.post(GENERATE).mock(
        side_effect=[httpx.Response(200, json=envelope(JOB_ID)), httpx.Response(200, json=envelope(JOB_ID + 1))]
    )
    upstream.get(RESULT).respond(json=envelope(video_job(percentage=30)))
    call = {"image_url": IMAGE, "prompt": "blink", "wait_seconds": 0}
    async with connect(settings, mode, clock) as client:
        first = (await client.call_tool("generate_video", call)).structured_content
        again = (await client.call_tool("generate_video", call)).structured_content
        assert submits.call_count == 1
        assert (again["id"], again["credits_charged"]) == (JOB_ID, 0)
        assert "existing video job" in again["message"]
        assert "nothing was charged" in again["message"]
        assert first["credits_charged"] == 5

        other_prompt = (await client.call_tool("generate_video", {**call, "prompt": "wave"})).structured_content
        assert other_prompt["credits_charged"] == 5
        assert submits.call_count == 2, "a different prompt is a different request"
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert "force_new" in (tools["generate_video"].description or "")
    assert tools["generate_video"].input_schema["properties"]["force_new"]["default"] is False


async def test_force_new_pays_for_a_second_job(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    submits = upstream.post(GENERATE).mock(
        side_effect=[httpx.Response(200, json=envelope(JOB_ID)), httpx.Response(200, json=envelope(JOB_ID + 1))]
    )
    upstream.get(RESULT).respond(json=envelope(video_job(percentage=30)))
    call = {"image_url": IMAGE, "wait_seconds": 0}
    async with connect(settings, mode, clock) as client:
        await client.call_tool("generate_video", call)
        second = (await client.call_tool("generate_video", {**call, "force_new": True})).structured_content
        credits = resource_json(await client.read_resource("cutout://credits"))
    assert submits.call_count == 2
    assert second["credits_charged"] == 5
    assert credits["spent"] == 10


async def test_two_identical_calls_in_flight_submit_once(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    submits = upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).respond(json=envelope(video_job(percentage=30)))
    results: list[dict[str, Any]] = []
    async with connect(settings, mode, clock) as client:

        async def call() -> None:
            result = await client.call_tool("generate_video", {"image_url": IMAGE, "wait_seconds": 0})
            results.append(result.structured_content)

        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            tg.start_soon(call)
    assert submits.call_count == 1, "two identical submissions in flight cost 5 credits, not 10"
    assert {r["id"] for r in results} == {JOB_ID}
    assert sorted(r["credits_charged"] for r in results) == [0, 5]


async def test_ten_waiters_on_one_job_make_the_upstream_requests_of_one(
    settings: Settings, mode: str, upstream: respx.MockRouter
) -> None:
    answers = [video_job(percentage=10), video_job(percentage=40), video_job(percentage=90), video_job(status=1)]

    polls = upstream.get(RESULT).mock(side_effect=[httpx.Response(200, json=envelope(a)) for a in answers])
    async with connect(settings, mode, FakeClock()) as client:
        await client.call_tool("get_video_result", {"id": JOB_ID, "wait_seconds": 600})
    reads_of_one = polls.call_count
    assert reads_of_one == len(answers)

    upstream.reset()
    polls.mock(side_effect=[httpx.Response(200, json=envelope(a)) for a in answers])
    clock = GateClock()
    progress: list[list[float]] = [[] for _ in range(10)]
    all_joined = anyio.Event()
    results: list[Any] = []
    async with connect(settings, mode, clock) as client:  # type: ignore[arg-type]

        async def wait(n: int) -> None:
            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress[n].append(value)
                if all(progress):
                    all_joined.set()

            result = await client.call_tool(
                "get_video_result", {"id": JOB_ID, "wait_seconds": 600}, progress_callback=on_progress
            )
            results.append(result.structured_content)

        async with anyio.create_task_group() as tg:
            for n in range(10):
                tg.start_soon(wait, n)
            await all_joined.wait()  # every waiter has seen the first read; the loop waits to poll again
            clock.gate.set()
    assert polls.call_count == reads_of_one
    assert [r["status"] for r in results] == ["succeeded"] * 10
    assert all(values[-1] == 100 for values in progress), "each waiter got its own notifications"


async def test_a_paid_call_over_the_budget_is_refused_before_it_is_sent(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    budgeted = settings.model_copy(update={"credit_budget": 8})
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).respond(json=envelope(video_job(status=1)))
    edits = upstream.post(EDIT).respond(json=edit_answer())
    async with connect(budgeted, mode, clock) as client:
        assert (await client.call_tool("generate_video", {"image_url": IMAGE})).is_error is False
        refused = await client.call_tool("edit_image", {"prompt": "make it blue", "image_urls": [IMAGE]})
        credits = resource_json(await client.read_resource("cutout://credits"))
    assert refused.is_error is True
    assert "5 spent" in text_of(refused)
    assert "3 credits remaining" in text_of(refused)
    assert edits.call_count == 0
    assert credits == {"spent": 5, "spent_total": 5, "budget": 8, "remaining": 3, "allowance": None}


async def test_edits_are_counted_and_a_refused_call_costs_nothing(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(EDIT).mock(
        side_effect=[
            httpx.Response(200, json=edit_answer()),
            httpx.Response(200, json=envelope(None, code=9011, msg="Image contains inappropriate content")),
        ]
    )
    async with connect(settings, mode, clock) as client:
        assert (await client.call_tool("edit_image", {"prompt": "x", "image_urls": [IMAGE]})).is_error is False
        assert (await client.call_tool("edit_image", {"prompt": "x", "image_urls": [IMAGE]})).is_error is True
        listed = (await client.call_tool("list_video_jobs", {})).structured_content
    assert listed["credits"]["spent"] == 4


async def test_callers_see_only_their_own_jobs(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).respond(json=envelope(video_job(percentage=30)))
    async with connect(settings, mode, clock, principal=lambda: "alice") as client:
        await client.call_tool("generate_video", {"image_url": IMAGE, "wait_seconds": 0})
    async with connect(settings, mode, clock, principal=lambda: "bob") as client:
        assert (await client.call_tool("list_video_jobs", {})).structured_content["jobs"] == []
        read = await client.call_tool("get_video_result", {"id": JOB_ID})
        assert read.is_error is True
        assert str(JOB_ID) in text_of(read)
        with pytest.raises(Exception, match="No video job"):
            await client.read_resource(f"cutout://jobs/{JOB_ID}")
        assert resource_json(await client.read_resource("cutout://credits"))["spent"] == 0


async def test_an_edit_paid_for_reaches_the_user_when_the_ledger_cannot_record_it(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    edits = upstream.post(EDIT).respond(json=edit_answer())
    async with connect(settings, mode, clock) as client:
        fail_writes(settings, "BEFORE UPDATE ON charges")  # reserving inserts; recording the edit updates
        result = await client.call_tool("edit_image", {"prompt": "x", "image_urls": [IMAGE]})
        heal_writes(settings)
        listed = (await client.call_tool("list_video_jobs", {})).structured_content
    assert edits.call_count == 1
    assert result.is_error is False, text_of(result)
    assert result.structured_content["image_url"] == "https://cdn.example.com/edit.jpg"
    assert result.structured_content["credits_charged"] == 4
    text = text_of(result)
    assert "nothing was sent" not in text.lower()
    assert "not charged" not in text.lower()
    assert "ledger" in result.structured_content["message"].lower()
    assert listed["credits"]["spent"] == 4, "the reserved charge stays counted"


async def test_a_video_paid_for_keeps_its_id_when_the_ledger_cannot_record_it(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).respond(json=envelope(video_job(percentage=30)))
    async with connect(settings, mode, clock) as client:
        fail_writes(settings, "BEFORE INSERT ON video_jobs")
        result = await client.call_tool("generate_video", {"image_url": IMAGE, "wait_seconds": 0})
    assert result.is_error is False, text_of(result)
    assert result.structured_content["id"] == JOB_ID
    assert result.structured_content["credits_charged"] == 5
    assert "ledger" in result.structured_content["message"].lower()


async def test_an_identical_call_after_a_submit_that_may_have_charged_is_refused_until_force_new(
    settings: Settings, mode: str, clock: FakeClock, upstream: respx.MockRouter
) -> None:
    submits = upstream.post(GENERATE).mock(
        side_effect=[
            httpx.ReadTimeout("no answer"),
            httpx.Response(200, json=envelope(JOB_ID)),
            httpx.Response(200, json=envelope(JOB_ID + 1)),
        ]
    )
    upstream.get(RESULT).respond(json=envelope(video_job(percentage=30)))
    call = {"image_url": IMAGE, "prompt": "blink", "wait_seconds": 0}
    async with connect(settings, mode, clock) as client:
        lost = await client.call_tool("generate_video", call)
        assert lost.is_error is True  # the answer never came: the job id is unknown
        again = await client.call_tool("generate_video", call)
        assert again.is_error is True
        assert "may have been charged" in text_of(again)
        assert "force_new=true" in text_of(again)
        assert submits.call_count == 1, "not sent again behind the user's back"
        other = await client.call_tool("generate_video", {**call, "prompt": "wave", "wait_seconds": 0})
        assert other.is_error is False, "another request is not affected"
        forced = await client.call_tool("generate_video", {**call, "force_new": True})
        assert forced.is_error is False, text_of(forced)
        credits = resource_json(await client.read_resource("cutout://credits"))
    assert submits.call_count == 3
    assert credits["spent"] == 15, "the lost submit stays counted: it may have been charged"
