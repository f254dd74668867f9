"""Video jobs move queued -> processing -> done (or failed) as the clock advances."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cutout_mcp.sandbox import ManualClock

from .helpers import GENERATE, RESULT, SAMPLE

pytestmark = pytest.mark.anyio


async def submit(client: httpx.AsyncClient, prompt: str = "zoom") -> int:
    job_id: int = (await client.post(GENERATE, json={"imageUrl": SAMPLE, "prompt": prompt})).json()["data"]
    return job_id


async def poll(client: httpx.AsyncClient, job_id: int) -> dict[str, Any]:
    data: dict[str, Any] = (await client.get(RESULT, params={"id": job_id})).json()["data"]
    return data


async def test_job_goes_from_queue_to_processing_to_success(client: httpx.AsyncClient, clock: ManualClock) -> None:
    job_id = await submit(client)
    seen: list[dict[str, Any]] = []
    for _ in range(24):  # 12 s in 0.5 s steps: 2 s queue + 8 s processing + slack
        seen.append(await poll(client, job_id))
        clock.advance(0.5)

    queued = [d for d in seen if d["status"] == 0 and d["percentage"] == 0 and d["waitNumber"] > 0]
    assert queued, "the job should first wait in the queue"
    waits = [d["waitNumber"] for d in seen]
    assert waits == sorted(waits, reverse=True), "waitNumber only counts down"
    assert waits[0] == 3

    processing = [d for d in seen if d["status"] == 0 and d["waitNumber"] == 0]
    percentages = [d["percentage"] for d in processing]
    assert percentages == sorted(percentages)
    assert len(set(percentages)) > 5, "percentage rises step by step"
    assert max(percentages) < 100

    done = seen[-1]
    assert done["status"] == 1
    assert done["percentage"] == 100
    assert done["waitNumber"] == 0
    assert done["resultUrl"].startswith(f"http://testserver/media/video/{job_id}.")
    assert done["cover"] == f"http://testserver/media/cover/{job_id}.jpg"
    assert (done["width"], done["height"]) == (480, 360)  # the 4:3 sample, long side 480


async def test_jobs_submitted_earlier_count_in_wait_number(client: httpx.AsyncClient, clock: ManualClock) -> None:
    first = await submit(client)
    clock.advance(1.0)
    second = await submit(client)
    assert (await poll(client, first))["waitNumber"] == 2  # backlog of 3 half drained
    assert (await poll(client, second))["waitNumber"] == 3 + 1  # full backlog plus the first job
    clock.advance(1.0)  # first leaves the queue
    assert (await poll(client, first))["waitNumber"] == 0
    assert (await poll(client, second))["waitNumber"] == 2
    clock.advance(1.0)
    assert (await poll(client, second))["waitNumber"] == 0


async def test_job_fails_token_ends_in_status_2_after_being_charged(
    client: httpx.AsyncClient, clock: ManualClock, state: Any
) -> None:
    job_id = await submit(client, prompt="a boat sandbox:job-fails")
    assert state.charges == 1
    assert (await poll(client, job_id))["status"] == 0
    clock.advance(60)
    data = await poll(client, job_id)
    assert data["status"] == 2
    assert data["resultUrl"] is None
    assert data["cover"] is None
    response = await client.get(f"/media/cover/{job_id}.jpg")
    assert response.status_code == 404


async def test_media_of_an_unfinished_job_is_404(client: httpx.AsyncClient) -> None:
    job_id = await submit(client)
    for ext in ("mp4", "gif"):
        assert (await client.get(f"/media/video/{job_id}.{ext}")).status_code == 404
    assert (await client.get(f"/media/cover/{job_id}.jpg")).status_code == 404
