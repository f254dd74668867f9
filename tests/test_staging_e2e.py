"""Staging end to end against a real S3-compatible server: the installed `cutout-mcp` process with
CUTOUT_STAGING_URL pointing at SeaweedFS (SigV4 on, `tests/s3server.py`).

The sandbox stands in for cutout.pro as the real service would be used (its key and base URL, not
sandbox mode, so the bucket is what stages the images), on a manual clock: its jobs move only when a
test says so, so a staged object can be looked at while its job runs and checked gone once it ended.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters

from cutout_mcp.clock import ManualClock
from cutout_mcp.sandbox import Sandbox, SandboxConfig, run_sandbox

from .memstore import jpeg
from .s3server import S3Server
from .test_e2e import CUTOUT_MCP, free_port, text_of, wait_for_port

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

JOB_SECONDS = 2.0


@pytest.fixture
async def upstream() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(queue_seconds=0, queue_depth=0, job_seconds=JOB_SECONDS, clock=ManualClock())
    async with run_sandbox(config) as running:
        yield running


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "Pictures"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(jpeg(640, 480, (200, 40, 40)))
    return folder


def env_for(upstream: Sandbox, s3_server: S3Server, prefix: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "CUTOUT_API_KEY": upstream.api_key,
        "CUTOUT_BASE_URL": upstream.base_url,
        "CUTOUT_LOG_LEVEL": "WARNING",
        "CUTOUT_STATE_DIR": str(tmp_path / "state"),
        "CUTOUT_PREVIEW": "off",  # results come from a loopback stand-in: no picture is fetched from it
        **s3_server.env(prefix),
        **extra,
    }


@asynccontextmanager
async def over_stdio(env: dict[str, str]) -> AsyncIterator[Client]:
    async with Client(StdioServerParameters(command=CUTOUT_MCP, env=env)) as client:
        yield client


@asynccontextmanager
async def over_http(env: dict[str, str]) -> AsyncIterator[Client]:
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped in finally
        [CUTOUT_MCP, "--transport", "streamable-http", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
    )
    try:
        await wait_for_port(port, process)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            yield client
    finally:
        process.terminate()
        process.wait(timeout=10)


def tampered(url: str) -> str:
    return url[:-1] + ("0" if url[-1] != "0" else "1")


async def finish(upstream: Sandbox, client: Client, job_id: int) -> dict[str, Any]:
    """Let the stand-in's clock run past the job, and read it."""
    clock = upstream.state.config.clock
    assert isinstance(clock, ManualClock)
    clock.advance(JOB_SECONDS + 1)
    done = await client.call_tool("get_video_result", {"id": job_id, "wait_seconds": 30})
    assert done.structured_content is not None, text_of(done)
    return done.structured_content


async def test_a_local_file_becomes_a_job_whose_url_serves_exactly_its_bytes_and_is_gone_after(
    upstream: Sandbox, s3_server: S3Server, s3_prefix: str, pictures: Path, tmp_path: Path
) -> None:
    path = pictures / "cat.jpg"
    env = env_for(upstream, s3_server, s3_prefix, tmp_path, CUTOUT_INPUT_DIRS=str(pictures))
    async with over_stdio(env) as client:
        started = await client.call_tool("generate_video", {"image_url": str(path), "wait_seconds": 0})
        assert started.is_error is False, text_of(started)
        assert started.structured_content is not None
        (job,) = upstream.state.jobs.values()
        url = job.image_url
        assert url.startswith(f"{s3_server.endpoint}/{s3_server.bucket}/{s3_prefix}/"), "a presigned URL of the bucket"
        (staged,) = s3_server.object_keys(s3_prefix)
        async with httpx.AsyncClient() as http:
            served = await http.get(url)
            assert served.status_code == 200
            assert served.content == path.read_bytes(), "exactly the file's bytes"
            assert (await http.get(url.split("?")[0])).status_code == 403, "unsigned"
            assert (await http.get(tampered(url))).status_code == 403, "tampered"
        assert "X-Amz-" not in text_of(started), "the result names the file, never the presigned URL"
        assert started.structured_content["image_url"] == str(path)

        done = await finish(upstream, client, started.structured_content["id"])
        assert done["status"] == "succeeded"
        assert s3_server.object_keys(s3_prefix) == [], f"{staged} deleted once the job ended"
        listed = await client.call_tool("list_video_jobs", {})
    assert "X-Amz-" not in text_of(listed)
    assert upstream.state.charges == 1


async def test_a_refused_path_or_a_non_image_uploads_nothing_and_charges_nothing(
    upstream: Sandbox, s3_server: S3Server, s3_prefix: str, pictures: Path, tmp_path: Path
) -> None:
    (pictures / "notes.jpg").write_text("not a picture, though named like one")
    (pictures / ".hidden.jpg").write_bytes(jpeg())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "dog.jpg").write_bytes(jpeg())
    (pictures / "link.jpg").symlink_to(elsewhere / "dog.jpg")
    (pictures / "tiny.jpg").write_bytes(jpeg(64, 64))
    env = env_for(upstream, s3_server, s3_prefix, tmp_path, CUTOUT_INPUT_DIRS=str(pictures))
    refused = {}
    async with over_stdio(env) as client:
        for name in ("notes.jpg", ".hidden.jpg", "link.jpg", "tiny.jpg", "missing.jpg"):
            result = await client.call_tool("generate_video", {"image_url": str(pictures / name), "wait_seconds": 0})
            refused[name] = result
        outside = await client.call_tool("generate_video", {"image_url": str(elsewhere / "dog.jpg")})
        edit = await client.call_tool("edit_image", {"prompt": "x", "image_urls": [str(pictures / "notes.jpg")]})
    for name, result in [*refused.items(), ("outside", outside), ("edit", edit)]:
        assert result.is_error is True, name
        assert "not a picture" not in text_of(result), "a refusal never shows the file's contents"
    assert s3_server.object_keys(s3_prefix) == [], "nothing reached the bucket"
    assert upstream.state.charges == 0
    assert upstream.state.jobs == {}


async def test_two_identical_local_files_pay_once_and_share_one_object(
    upstream: Sandbox, s3_server: S3Server, s3_prefix: str, pictures: Path, tmp_path: Path
) -> None:
    shutil.copy(pictures / "cat.jpg", pictures / "same cat.jpg")
    env = env_for(upstream, s3_server, s3_prefix, tmp_path, CUTOUT_INPUT_DIRS=str(pictures))
    async with over_stdio(env) as client:
        first = await client.call_tool("generate_video", {"image_url": str(pictures / "cat.jpg"), "wait_seconds": 0})
        again = await client.call_tool(
            "generate_video", {"image_url": str(pictures / "same cat.jpg"), "wait_seconds": 0}
        )
        assert first.structured_content is not None, text_of(first)
        assert again.structured_content is not None, text_of(again)
        assert again.structured_content["id"] == first.structured_content["id"]
        assert again.structured_content["credits_charged"] == 0
        assert len(s3_server.object_keys(s3_prefix)) == 1, "one object for the one content"
        await finish(upstream, client, first.structured_content["id"])
        assert s3_server.object_keys(s3_prefix) == [], "deleted once the job ended"
    assert upstream.state.charges == 1


async def test_an_edit_of_a_local_file_gets_the_buckets_http_url_and_leaves_nothing(
    upstream: Sandbox, s3_server: S3Server, s3_prefix: str, pictures: Path, tmp_path: Path
) -> None:
    env = env_for(upstream, s3_server, s3_prefix, tmp_path, CUTOUT_INPUT_DIRS=str(pictures))
    async with over_stdio(env) as client:
        edit = await client.call_tool(
            "edit_image", {"prompt": "make it blue", "image_urls": [str(pictures / "cat.jpg")], "aspect_ratio": "1:1"}
        )
        assert edit.is_error is False, text_of(edit)
        assert edit.structured_content is not None
        assert s3_server.object_keys(s3_prefix) == [], "deleted once the edit answered"
    (record,) = upstream.state.edits.values()
    assert record.image_urls[0].startswith(f"{s3_server.endpoint}/"), "plain http, from the bucket's origin only"
    assert edit.structured_content["reference_image_urls"] == [str(pictures / "cat.jpg")]
    assert upstream.state.charges == 1


async def test_an_upload_over_streamable_http_becomes_a_video(
    upstream: Sandbox, s3_server: S3Server, s3_prefix: str, pictures: Path, tmp_path: Path
) -> None:
    photo = (pictures / "cat.jpg").read_bytes()
    async with over_http(env_for(upstream, s3_server, s3_prefix, tmp_path)) as client:
        local = await client.call_tool("generate_video", {"image_url": str(pictures / "cat.jpg")})
        assert local.is_error is True
        assert "get_upload_url" in text_of(local), "a remote server points at the upload tool"

        ticket = await client.call_tool("get_upload_url", {"filename": "cat.jpg", "content_type": "image/jpeg"})
        assert ticket.structured_content is not None, text_of(ticket)
        async with httpx.AsyncClient() as http:
            put = await http.put(
                ticket.structured_content["upload_url"], content=photo, headers={"Content-Type": "image/jpeg"}
            )
            assert put.status_code == 200
        reference = ticket.structured_content["image_url"]
        started = await client.call_tool("generate_video", {"image_url": reference, "wait_seconds": 0})
        assert started.is_error is False, text_of(started)
        assert started.structured_content is not None
        assert started.structured_content["image_url"] == reference
        (job,) = upstream.state.jobs.values()
        async with httpx.AsyncClient() as http:
            assert (await http.get(job.image_url)).content == photo
        retry = await client.call_tool("generate_video", {"image_url": reference, "wait_seconds": 0})
        assert retry.structured_content is not None, text_of(retry)
        assert retry.structured_content["id"] == started.structured_content["id"], "the same call is the same job"
        assert retry.structured_content["credits_charged"] == 0
        kept = s3_server.object_keys(s3_prefix)
        assert sorted(key.split("/")[0] for key in kept) == ["staged", "uploads"], "kept while the job runs"
        done = await finish(upstream, client, started.structured_content["id"])
        assert done["status"] == "succeeded"
        assert s3_server.object_keys(s3_prefix) == [], "the upload and its staged copy deleted"
    assert upstream.state.charges == 1


async def test_a_job_that_ended_while_the_server_was_down_gives_its_object_up_after_the_restart(
    upstream: Sandbox, s3_server: S3Server, s3_prefix: str, pictures: Path, tmp_path: Path
) -> None:
    env = env_for(upstream, s3_server, s3_prefix, tmp_path, CUTOUT_INPUT_DIRS=str(pictures))
    async with over_stdio(env) as client:
        started = await client.call_tool("generate_video", {"image_url": str(pictures / "cat.jpg"), "wait_seconds": 0})
        assert started.structured_content is not None, text_of(started)
    assert len(s3_server.object_keys(s3_prefix)) == 1, "kept while the job runs, whatever the server does"
    async with over_stdio(env) as client:
        done = await finish(upstream, client, started.structured_content["id"])
        assert done["status"] == "succeeded"
        assert s3_server.object_keys(s3_prefix) == [], "the restarted server deletes it once it sees the job ended"
    assert upstream.state.charges == 1


async def test_an_object_the_lifecycle_rule_expired_under_a_running_job_is_put_again_for_the_next(
    upstream: Sandbox, s3_server: S3Server, s3_prefix: str, pictures: Path, tmp_path: Path
) -> None:
    """The ledger says a job holds the content, but the bucket's one-day rule removed it: the next job of
    the same picture must not be sent a URL to nothing (its credits would buy a failure)."""
    import obstore

    env = env_for(upstream, s3_server, s3_prefix, tmp_path, CUTOUT_INPUT_DIRS=str(pictures))
    path = pictures / "cat.jpg"
    async with over_stdio(env) as client:
        first = await client.call_tool("generate_video", {"image_url": str(path), "prompt": "a", "wait_seconds": 0})
        assert first.is_error is False, text_of(first)
        (staged,) = s3_server.object_keys(s3_prefix)
        await obstore.delete_async(s3_server.admin_store(s3_prefix), staged)  # what the lifecycle rule does
        second = await client.call_tool("generate_video", {"image_url": str(path), "prompt": "b", "wait_seconds": 0})
        assert second.is_error is False, text_of(second)
    assert s3_server.object_keys(s3_prefix) == [staged], "put again under the same content key"
    newest = max(upstream.state.jobs.values(), key=lambda job: job.seq)
    async with httpx.AsyncClient() as http:
        assert (await http.get(newest.image_url)).content == path.read_bytes()
    assert upstream.state.charges == 2


# --- sandbox mode with a bucket set: the bucket is used, in both forms ------------------------


async def test_a_standalone_sandbox_with_a_bucket_set_stages_in_the_bucket(
    upstream: Sandbox, s3_server: S3Server, s3_prefix: str, pictures: Path, tmp_path: Path
) -> None:
    env = env_for(upstream, s3_server, s3_prefix, tmp_path, CUTOUT_INPUT_DIRS=str(pictures), CUTOUT_SANDBOX="1")
    async with over_stdio(env) as client:
        assert "staged in the staging bucket" in (client.instructions or "")
        started = await client.call_tool("generate_video", {"image_url": str(pictures / "cat.jpg"), "wait_seconds": 0})
        assert started.structured_content is not None, text_of(started)
        (job,) = upstream.state.jobs.values()
        assert job.image_url.startswith(f"{s3_server.endpoint}/{s3_server.bucket}/{s3_prefix}/")
        assert len(s3_server.object_keys(s3_prefix)) == 1, "staged in the bucket set"
        assert upstream.state.staged == {}, "not on the sandbox"
        done = await finish(upstream, client, started.structured_content["id"])
    assert done["status"] == "succeeded"
    assert s3_server.object_keys(s3_prefix) == [], "deleted once the job ended"


async def test_an_in_process_sandbox_with_a_bucket_set_stages_in_the_bucket_and_says_what_it_sets_aside(
    s3_server: S3Server, s3_prefix: str, pictures: Path, tmp_path: Path
) -> None:
    from mcp.client.stdio import stdio_client

    env = {
        "CUTOUT_SANDBOX": "1",  # no CUTOUT_BASE_URL: started in-process
        "CUTOUT_API_KEY": "a-real-key-never-sent-to-the-sandbox",
        "CUTOUT_CREDIT_BUDGET": "50",
        "CUTOUT_STATE_DIR": str(tmp_path / "state"),
        "CUTOUT_INPUT_DIRS": str(pictures),
        "CUTOUT_LOG_LEVEL": "INFO",
        "CUTOUT_PREVIEW": "off",
        **s3_server.env(s3_prefix),
    }
    log = tmp_path / "stderr.txt"
    with log.open("w") as errlog:
        params = StdioServerParameters(command=CUTOUT_MCP, args=["--job-seconds", "60"], env=env)
        async with Client(stdio_client(params, errlog=errlog)) as client:
            started = await client.call_tool(
                "generate_video", {"image_url": str(pictures / "cat.jpg"), "wait_seconds": 0}
            )
            assert started.structured_content is not None, text_of(started)
            assert len(s3_server.object_keys(s3_prefix)) == 1, "the bucket set is the one used"
            listed = await client.call_tool("list_video_jobs", {})
    assert listed.structured_content is not None
    assert listed.structured_content["credits"]["budget"] == 50, "the budget set is kept"
    (line,) = [line for line in log.read_text().splitlines() if "Sandbox mode" in line]
    assert "set aside: CUTOUT_API_KEY" in line
    assert "CUTOUT_CREDIT_BUDGET=50" in line
    assert "the ledger in CUTOUT_STATE_DIR" in line
    assert "staged in the bucket CUTOUT_STAGING_URL names" in line
    assert "a-real-key" not in log.read_text()
