"""Local images through the tools: one job per content, labels instead of presigned URLs, deletion when done."""

from __future__ import annotations

import base64
import json
import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.types import CallToolResult, ElicitRequestFormParams, ElicitRequestParams, ElicitResult

from cutout_mcp.config import Settings
from cutout_mcp.server import build_server

from .conftest import FAST_RETRY, FakeClock, envelope, video_job
from .memstore import ORIGIN, MemoryStore, jpeg

pytestmark = pytest.mark.anyio

UPLOADS_A = "uploads/" + "A" * 32
UPLOADS_U = "uploads/" + "U" * 32
UPLOADS_X = "uploads/" + "X" * 32
"""Upload folders of the shape get_upload_url makes (32 random characters)."""

GENERATE = "/api/v2/imageToVideo/generate"
RESULT = "/api/v2/imageToVideo/getResult"
EDIT = "/api/v1/image/edit"
JOB_ID = 700842286474565
SECOND_JOB = 700842286474566


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


class Upstream:
    """cutout.pro for these tests: remembers the image URL each job was given, and echoes it back."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.sent: list[str] = []
        self.edit_urls: list[list[str]] = []
        self.status: dict[int, int] = {}
        self.ids = iter([JOB_ID, SECOND_JOB, 700842286474567])
        self.by_id: dict[int, str] = {}
        router.post(GENERATE).mock(side_effect=self._generate)
        router.get(RESULT).mock(side_effect=self._result)
        router.post(EDIT).mock(side_effect=self._edit)

    def _generate(self, request: httpx.Request) -> httpx.Response:
        url = json.loads(request.content)["imageUrl"]
        self.sent.append(url)
        job_id = next(self.ids)
        self.by_id[job_id] = url
        return httpx.Response(200, json=envelope(job_id))

    def _result(self, request: httpx.Request) -> httpx.Response:
        job_id = int(request.url.params["id"])
        status = self.status.get(job_id, 0)
        return httpx.Response(
            200, json=envelope(video_job(job_id, status=status, wait_number=2, imageUrl=self.by_id.get(job_id, "")))
        )

    def _edit(self, request: httpx.Request) -> httpx.Response:
        urls = json.loads(request.content)["imageUrl"]
        self.edit_urls.append(urls)
        data = {"id": 789012345678901, "imageUrl": "https://cdn.example.com/edit.jpg", "model": "gpt-image-1"}
        return httpx.Response(200, json=envelope({**data, "status": 1, "referenceImageUrl": urls}))


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "Pictures"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(jpeg())
    shutil.copy(folder / "cat.jpg", folder / "same cat.jpg")
    return folder


@pytest.fixture
def local(settings: Settings, pictures: Path) -> Settings:
    return settings.model_copy(update={"input_dirs": (pictures,), "preview": False})


@pytest.fixture
def cutout(upstream: respx.MockRouter) -> Upstream:
    return Upstream(upstream)


@asynccontextmanager
async def connect(
    settings: Settings, clock: FakeClock, store: MemoryStore | None, **kwargs: Any
) -> AsyncIterator[Client]:
    server = build_server(settings, clock=clock, retry=FAST_RETRY, staging=store)
    async with Client(server, **kwargs) as client:
        yield client


def no_presigned_url(store: MemoryStore, *texts: str) -> None:
    for text in texts:
        assert ORIGIN not in text
        for signature in store.signatures:
            assert signature not in text


async def test_a_local_file_reaches_cutout_as_a_presigned_url_and_is_shown_as_its_path(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = MemoryStore()
    path = str(pictures / "cat.jpg")
    async with connect(local, clock, store) as client:
        result = await client.call_tool("generate_video", {"image_url": path, "wait_seconds": 0})
        listed = await client.call_tool("list_video_jobs", {})
    assert result.is_error is False, text_of(result)
    (sent,) = cutout.sent
    key = store.staged()[0]
    assert sent.startswith(f"{ORIGIN}/{key}?")
    assert store.objects[key][0] == (pictures / "cat.jpg").read_bytes()
    assert result.structured_content is not None
    assert result.structured_content["image_url"] == path, "upstream's echo of the presigned URL is replaced"
    assert listed.structured_content is not None
    assert listed.structured_content["jobs"][0]["image_url"] == path
    no_presigned_url(store, text_of(result), text_of(listed), caplog.text)


async def test_the_same_bytes_by_another_path_or_a_data_uri_are_the_same_job_paid_once(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream
) -> None:
    store = MemoryStore()
    inline = "data:image/jpeg;base64," + base64.b64encode((pictures / "cat.jpg").read_bytes()).decode()
    async with connect(local, clock, store) as client:
        results = [
            await client.call_tool("generate_video", {"image_url": image, "prompt": "blink", "wait_seconds": 0})
            for image in (str(pictures / "cat.jpg"), str(pictures / "same cat.jpg"), inline)
        ]
    charged = [r.structured_content["credits_charged"] for r in results if r.structured_content]
    assert charged == [5, 0, 0]
    assert {r.structured_content["id"] for r in results if r.structured_content} == {JOB_ID}
    assert len(cutout.sent) == 1
    assert len(store.puts) == 1, "the same content is uploaded once"


async def test_an_upload_is_staged_by_its_content_and_is_the_same_request_as_that_content(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream
) -> None:
    store = MemoryStore()
    await store.put(f"{UPLOADS_U}/cat.jpg", (pictures / "cat.jpg").read_bytes(), "image/jpeg")
    async with connect(local, clock, store) as client:
        first = await client.call_tool(
            "generate_video",
            {"image_url": f"upload:{UPLOADS_U}/cat.jpg", "wait_seconds": 0},
        )
        again = await client.call_tool("generate_video", {"image_url": str(pictures / "cat.jpg"), "wait_seconds": 0})
    assert first.structured_content is not None
    assert first.structured_content["image_url"] == f"upload:{UPLOADS_U}/cat.jpg"
    assert len(store.staged()) == 1
    assert again.structured_content is not None
    assert again.structured_content["credits_charged"] == 0


async def test_a_video_call_repeated_with_its_upload_gets_the_same_job_free_until_the_job_finishes(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream
) -> None:
    """A retry after a timeout repeats the call exactly: the reference still names the same content."""
    store = MemoryStore()
    upload = f"{UPLOADS_U}/cat.jpg"
    await store.put(upload, (pictures / "cat.jpg").read_bytes(), "image/jpeg")
    call = {"image_url": f"upload:{upload}", "prompt": "blink", "wait_seconds": 0}
    async with connect(local, clock, store) as client:
        first = await client.call_tool("generate_video", call)
        retry = await client.call_tool("generate_video", call)
        cutout.status[JOB_ID] = 1
        finished = await client.call_tool("get_video_result", {"id": JOB_ID})
        late = await client.call_tool("generate_video", call)
    assert first.structured_content is not None
    assert retry.structured_content is not None
    assert retry.is_error is False, text_of(retry)
    assert retry.structured_content["id"] == first.structured_content["id"] == JOB_ID
    assert retry.structured_content["credits_charged"] == 0
    assert retry.structured_content["image_url"] == f"upload:{upload}"
    assert len(cutout.sent) == 1
    assert finished.structured_content is not None
    assert finished.structured_content["status"] == "succeeded"
    assert upload not in store.objects, "the upload goes with its job"
    assert store.staged() == []
    assert late.is_error is True, "once the job is finished, a second use is refused, not paid for again"
    assert "finished" in text_of(late)
    assert "Nothing was sent or charged" in text_of(late)
    assert len(cutout.sent) == 1


async def test_an_upload_shared_by_two_unfinished_jobs_stays_until_both_finish(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream
) -> None:
    store = MemoryStore()
    upload = f"{UPLOADS_U}/cat.jpg"
    await store.put(upload, (pictures / "cat.jpg").read_bytes(), "image/jpeg")
    async with connect(local, clock, store) as client:
        for prompt in ("one", "two"):
            await client.call_tool(
                "generate_video", {"image_url": f"upload:{upload}", "prompt": prompt, "wait_seconds": 0}
            )
        cutout.status[JOB_ID] = 1
        await client.call_tool("get_video_result", {"id": JOB_ID})
        assert upload in store.objects, "the second job's call may still be repeated"
        retry = await client.call_tool(
            "generate_video", {"image_url": f"upload:{upload}", "prompt": "two", "wait_seconds": 0}
        )
        cutout.status[SECOND_JOB] = 2
        await client.call_tool("get_video_result", {"id": SECOND_JOB})
    assert retry.structured_content is not None
    assert (retry.structured_content["id"], retry.structured_content["credits_charged"]) == (SECOND_JOB, 0)
    assert upload not in store.objects
    assert store.staged() == []


async def test_a_refused_image_uploads_nothing_and_charges_nothing(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream
) -> None:
    (pictures / "notes.jpg").write_bytes(b"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG\n")
    store = MemoryStore()
    async with connect(local, clock, store) as client:
        result = await client.call_tool("generate_video", {"image_url": str(pictures / "notes.jpg")})
    assert result.is_error is True
    assert "not a JPEG or PNG" in text_of(result)
    assert "wJalrXUtnFEMI" not in text_of(result)
    assert store.objects == {}
    assert cutout.sent == []


async def test_without_a_store_a_local_path_is_a_tool_error_saying_what_to_set(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream
) -> None:
    async with connect(local, clock, None) as client:
        result = await client.call_tool("generate_video", {"image_url": str(pictures / "cat.jpg")})
    assert result.is_error is True
    assert "CUTOUT_STAGING_URL" in text_of(result)
    assert cutout.sent == []


async def test_a_call_refused_before_paying_takes_its_staged_copy_back(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream
) -> None:
    store = MemoryStore()
    broke = local.model_copy(update={"credit_budget": 0})
    async with connect(broke, clock, store) as client:
        result = await client.call_tool("generate_video", {"image_url": str(pictures / "cat.jpg")})
    assert result.is_error is True
    assert "CUTOUT_CREDIT_BUDGET" in text_of(result)
    assert store.staged() == []
    assert cutout.sent == []


# --- deletion ---------------------------------------------------------------------------------


async def test_the_staged_copy_is_deleted_once_the_job_is_finished(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream
) -> None:
    store = MemoryStore()
    async with connect(local, clock, store) as client:
        await client.call_tool("generate_video", {"image_url": str(pictures / "cat.jpg"), "wait_seconds": 0})
        assert len(store.staged()) == 1, "kept while cutout.pro may still fetch it"
        cutout.status[JOB_ID] = 1
        finished = await client.call_tool("get_video_result", {"id": JOB_ID})
    assert finished.structured_content is not None
    assert finished.structured_content["status"] == "succeeded"
    assert store.staged() == []


async def test_a_copy_shared_with_an_unfinished_job_is_kept_until_that_one_finishes(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream
) -> None:
    store = MemoryStore()
    path = str(pictures / "cat.jpg")
    async with connect(local, clock, store) as client:
        await client.call_tool("generate_video", {"image_url": path, "prompt": "one", "wait_seconds": 0})
        await client.call_tool("generate_video", {"image_url": path, "prompt": "two", "wait_seconds": 0})
        cutout.status[JOB_ID] = 1
        await client.call_tool("get_video_result", {"id": JOB_ID})
        assert len(store.staged()) == 1, "the second job still needs it"
        cutout.status[SECOND_JOB] = 2
        await client.call_tool("get_video_result", {"id": SECOND_JOB})
    assert store.staged() == []


async def test_a_failed_delete_never_fails_the_call_and_is_retried_after_a_restart(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    async with connect(local, clock, store) as client:
        await client.call_tool("generate_video", {"image_url": str(pictures / "cat.jpg"), "wait_seconds": 0})
        store.fail_deletes = True
        cutout.status[JOB_ID] = 1
        finished = await client.call_tool("get_video_result", {"id": JOB_ID})
    assert finished.is_error is False, text_of(finished)
    assert "Could not delete a staged image" in caplog.text
    assert len(store.staged()) == 1
    store.fail_deletes = False
    async with connect(local, clock, store):
        pass  # start-up sweeps what finished jobs still hold
    assert store.staged() == []


async def test_an_edit_sends_presigned_urls_shows_paths_and_deletes_the_copies_after_the_answer(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream
) -> None:
    store = MemoryStore()
    path = str(pictures / "cat.jpg")
    args = {"prompt": "make it blue", "image_urls": [path, "https://img.example.com/dog.png"]}
    async with connect(local, clock, store) as client:
        result = await client.call_tool("edit_image", args)
    assert result.is_error is False, text_of(result)
    (urls,) = cutout.edit_urls
    assert urls[0].startswith(ORIGIN + "/staged/")
    assert urls[1] == "https://img.example.com/dog.png"
    assert result.structured_content is not None
    assert result.structured_content["reference_image_urls"] == [path, "https://img.example.com/dog.png"]
    no_presigned_url(store, text_of(result))
    assert store.objects == {}, "deleted once cutout.pro answered"


async def test_the_spend_question_shows_the_path(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream
) -> None:
    asked: list[str] = []

    async def user(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        assert isinstance(params, ElicitRequestFormParams)
        asked.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    store = MemoryStore()
    confirming = local.model_copy(update={"confirm_spend": "always"})
    path = str(pictures / "cat.jpg")
    async with connect(confirming, clock, store, elicitation_callback=user) as client:
        result = await client.call_tool("generate_video", {"image_url": path, "wait_seconds": 0})
    assert result.is_error is False, text_of(result)
    (question,) = asked
    assert f"Image: {path}" in question
    no_presigned_url(store, question)


def test_a_presigned_urls_signature_is_taken_out_of_any_log_line() -> None:
    from cutout_mcp.logs import REDACTED, RedactingFilter

    line = f"HTTP Request: GET {ORIGIN}/staged/ab.jpg?X-Amz-Credential=AKIAX%2F1&X-Amz-Signature=deadbeef01 200"
    record = logging.LogRecord("httpx", logging.DEBUG, __file__, 1, "%s", (line,), None)
    assert RedactingFilter([]).filter(record) is True
    assert "deadbeef01" not in record.getMessage()
    assert "AKIAX" not in record.getMessage()
    assert f"X-Amz-Signature={REDACTED}" in record.getMessage()


async def test_a_job_staged_before_a_restart_without_a_store_still_shows_its_path(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream
) -> None:
    store = MemoryStore()
    path = str(pictures / "cat.jpg")
    async with connect(local, clock, store) as client:
        await client.call_tool("generate_video", {"image_url": path, "wait_seconds": 0})
    async with connect(local, clock, None) as client:  # restarted with staging switched off
        read = await client.call_tool("get_video_result", {"id": JOB_ID})
    assert read.structured_content is not None
    assert read.structured_content["image_url"] == path
    no_presigned_url(store, text_of(read))


async def test_a_failing_store_costs_a_sweep_one_attempt_not_one_per_object(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream
) -> None:
    store = MemoryStore()
    for shade in range(3):
        (pictures / f"shade{shade}.jpg").write_bytes(jpeg(color=(shade * 60, 90, 90)))
    async with connect(local, clock, store) as client:
        ids = []
        for shade in range(3):
            started = await client.call_tool(
                "generate_video", {"image_url": str(pictures / f"shade{shade}.jpg"), "wait_seconds": 0}
            )
            assert started.structured_content is not None
            ids.append(started.structured_content["id"])
        store.fail_deletes = True
        for job_id in ids:
            cutout.status[job_id] = 1
            await client.call_tool("get_video_result", {"id": job_id})
    assert len(store.staged()) == 3
    attempts = store.delete_attempts
    async with connect(local, clock, store):
        pass
    assert store.delete_attempts == attempts + 1, "the start-up sweep stops at the first failure"
    store.fail_deletes = False
    async with connect(local, clock, store):
        pass
    assert store.staged() == []


async def test_a_submit_under_way_on_another_replica_keeps_the_object_from_being_deleted(tmp_path: Path) -> None:
    from cutout_mcp.core.inputs.image_rules import check_video_facts
    from cutout_mcp.core.inputs.image_sources import load_image
    from cutout_mcp.core.inputs.staged import StagedImages
    from cutout_mcp.core.storage import SqliteStorage

    (tmp_path / "cat.jpg").write_bytes(jpeg())
    store = MemoryStore()
    settings = Settings(api_key="k", input_dirs=(tmp_path,))
    one, two = SqliteStorage.open_in(tmp_path / "state"), SqliteStorage.open_in(tmp_path / "state")
    try:
        deleting, submitting = StagedImages(store, one), StagedImages(store, two)  # two replicas, one ledger
        source = await load_image(
            str(tmp_path / "cat.jpg"),
            "image_url",
            settings=settings,
            store=store,
            check=check_video_facts,
            https_only=False,
        )
        image = await submitting.plan(source)
        assert image.staged_key is not None
        async with submitting.holding([image]):
            await submitting.url(image)
            assert await deleting.release(image.staged_key)
            assert store.staged() == [image.staged_key], "kept while the other replica's submit is under way"
        assert await deleting.release(image.staged_key)
        assert store.staged() == []
    finally:
        one.close()
        two.close()


async def test_a_submit_meeting_a_delete_under_way_waits_for_it_and_puts_the_object_again(tmp_path: Path) -> None:
    """The other order: a delete on another replica holds the lock and has looked for marks before this
    submit's mark was written; the submit must not look for the object until that delete is over."""
    from cutout_mcp.core.inputs.image_rules import check_video_facts
    from cutout_mcp.core.inputs.image_sources import load_image
    from cutout_mcp.core.inputs.staged import LOCK_PREFIX, StagedImages
    from cutout_mcp.core.storage import Guard, SqliteStorage

    (tmp_path / "cat.jpg").write_bytes(jpeg())
    store = MemoryStore()
    settings = Settings(api_key="k", input_dirs=(tmp_path,))
    one, two = SqliteStorage.open_in(tmp_path / "state"), SqliteStorage.open_in(tmp_path / "state")
    try:
        submitting = StagedImages(store, two)
        source = await load_image(
            str(tmp_path / "cat.jpg"),
            "image_url",
            settings=settings,
            store=store,
            check=check_video_facts,
            https_only=False,
        )
        image = await submitting.plan(source)
        assert image.staged_key is not None
        await store.put(image.staged_key, jpeg(), "image/jpeg")  # an earlier job's copy, about to be deleted
        lock = Guard(LOCK_PREFIX + image.staged_key, "the deleting replica")
        assert (await one.claim_guard(lock, 5.0, 0.0)).claimed  # the delete: lock taken, no mark seen yet
        sent: list[str] = []
        saw_lock = anyio.Event()
        look = two.guard_held

        async def looked(prefix: str) -> bool:  # observes the submit's ledger reads, changes nothing
            held = await look(prefix)
            if held and prefix == lock.key:
                saw_lock.set()
            return held

        two.guard_held = looked  # type: ignore[method-assign]

        async def submit() -> None:
            async with submitting.holding([image]):
                sent.append(await submitting.url(image))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(submit)
                await saw_lock.wait()
                assert sent == [], "the submit waits while the delete holds the lock"
                await store.delete(image.staged_key)  # the delete goes ahead, then lets go of the lock
                await one.release_guard(lock)
        assert len(sent) == 1
        assert store.staged() == [image.staged_key], "the submit put it again before handing it out"
    finally:
        one.close()
        two.close()


@pytest.mark.parametrize(
    ("extra_bytes", "tool"),
    [(3, "generate_video"), (3, "edit_image"), (2 * 1024 * 1024, "generate_video"), (2 * 1024 * 1024, "edit_image")],
)
async def test_a_data_uri_over_10_mb_is_refused_naming_the_decoded_rule_and_costs_nothing(
    local: Settings, clock: FakeClock, cutout: Upstream, extra_bytes: int, tool: str
) -> None:
    """Just over the limit (the server's own check) and far over it (the schema's maxLength): one sentence."""
    from cutout_mcp import catalog

    payload = base64.b64encode(b"\xff\xd8\xff" + b"\0" * (catalog.MAX_IMAGE_BYTES + extra_bytes - 3)).decode()
    image = "data:image/jpeg;base64," + payload
    arguments = {"image_url": image} if tool == "generate_video" else {"prompt": "blue", "image_urls": [image]}
    store = MemoryStore()
    async with connect(local, clock, store) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error is True
    message = text_of(result)
    assert "at most 10 MB once decoded" in message
    assert "no credits spent" in message
    assert "characters" not in message, "not the schema's character count"
    assert len(message) < 600, "no echo of the payload"
    assert cutout.sent == [], "nothing reached cutout.pro"
    assert cutout.edit_urls == []
    assert store.objects == {}, "nothing was staged"


async def test_a_second_upload_of_the_same_content_answered_by_the_unfinished_job_is_not_left_behind(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream
) -> None:
    """Two clients upload the same picture and make the same call: the second is answered by the first's job,
    free. Nothing records the second upload, so it goes at once; the first goes with its job."""
    store = MemoryStore()
    first_upload, second_upload = f"{UPLOADS_U}/cat.jpg", f"{UPLOADS_X}/cat.jpg"
    for upload in (first_upload, second_upload):
        await store.put(upload, (pictures / "cat.jpg").read_bytes(), "image/jpeg")
    async with connect(local, clock, store) as client:
        first = await client.call_tool(
            "generate_video", {"image_url": f"upload:{first_upload}", "prompt": "blink", "wait_seconds": 0}
        )
        second = await client.call_tool(
            "generate_video", {"image_url": f"upload:{second_upload}", "prompt": "blink", "wait_seconds": 0}
        )
        assert second_upload not in store.objects, "answered by the unfinished job: nothing else needs it"
        assert first_upload in store.objects, "the job's own upload stays while the job runs (a repeated call)"
        cutout.status[JOB_ID] = 1
        await client.call_tool("get_video_result", {"id": JOB_ID})
    assert first.structured_content is not None
    assert second.structured_content is not None
    assert (second.structured_content["id"], second.structured_content["credits_charged"]) == (JOB_ID, 0)
    assert len(cutout.sent) == 1
    assert [key for key in store.objects if key.startswith("uploads/")] == []
    assert store.staged() == []


async def test_an_upload_goes_with_its_job_even_while_another_job_holds_the_same_content(
    local: Settings, pictures: Path, clock: FakeClock, cutout: Upstream
) -> None:
    """The same picture, uploaded for one video and passed as a file for another: when the upload's job ends,
    the upload goes, although the other job still holds the content (its end would never delete that upload)."""
    store = MemoryStore()
    upload = f"{UPLOADS_U}/cat.jpg"
    await store.put(upload, (pictures / "cat.jpg").read_bytes(), "image/jpeg")
    async with connect(local, clock, store) as client:
        await client.call_tool("generate_video", {"image_url": f"upload:{upload}", "prompt": "one", "wait_seconds": 0})
        await client.call_tool(
            "generate_video", {"image_url": str(pictures / "cat.jpg"), "prompt": "two", "wait_seconds": 0}
        )
        cutout.status[JOB_ID] = 1
        await client.call_tool("get_video_result", {"id": JOB_ID})
        assert upload not in store.objects, "no unfinished job was made from the upload"
        assert len(store.staged()) == 1, "the content stays for the unfinished job"
        cutout.status[SECOND_JOB] = 1
        await client.call_tool("get_video_result", {"id": SECOND_JOB})
    assert len(cutout.sent) == 2
    assert store.objects == {}
