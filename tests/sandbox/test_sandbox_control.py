"""The /__sandbox__/ control surface: stats, clock, reset."""

from __future__ import annotations

import httpx
import pytest

from cutout_mcp import catalog
from cutout_mcp.sandbox import ManualClock, SandboxConfig, SandboxState, create_app

from .helpers import BASE, EDIT, GENERATE, RESULT, SAMPLE, edit_body

pytestmark = pytest.mark.anyio


async def test_stats_report_charges_credits_requests_and_jobs(client: httpx.AsyncClient) -> None:
    job_id = (await client.post(GENERATE, json={"imageUrl": SAMPLE})).json()["data"]
    await client.get(RESULT, params={"id": job_id})
    await client.post(EDIT, json=edit_body(model="gemini-3-pro-image-preview"))
    client.headers.pop("APIKEY")  # the control surface needs no key
    stats = (await client.get("/__sandbox__/stats")).json()
    assert stats["charges"] == 2
    assert stats["credits_spent"] == catalog.VIDEO_CREDITS + 15
    assert stats["balance"] == 1_000_000 - stats["credits_spent"]
    assert stats["requests"] == {GENERATE: 1, RESULT: 1, EDIT: 1}
    assert [j["id"] for j in stats["jobs"]] == [job_id]
    assert stats["jobs"][0]["status"] == 0
    assert stats["edits"][0]["model"] == "gemini-3-pro-image-preview"
    assert stats["clock"] == "manual"
    assert stats["pending_faults"] == []


async def test_clock_advance_over_http_moves_jobs(client: httpx.AsyncClient, clock: ManualClock) -> None:
    job_id = (await client.post(GENERATE, json={"imageUrl": SAMPLE})).json()["data"]
    before = clock.now()
    response = await client.post("/__sandbox__/clock/advance", json={"seconds": 60})
    assert response.json() == {"now": int((before + 60) * 1000)}
    assert (await client.get(RESULT, params={"id": job_id})).json()["data"]["status"] == 1


async def test_clock_advance_is_refused_on_the_system_clock() -> None:
    transport = httpx.ASGITransport(app=create_app(SandboxState(SandboxConfig())))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        response = await c.post("/__sandbox__/clock/advance", json={"seconds": 1})
    assert response.status_code == 409


async def test_bad_advance_is_a_400(client: httpx.AsyncClient) -> None:
    assert (await client.post("/__sandbox__/clock/advance", json={"seconds": -1})).status_code == 400
    assert (await client.post("/__sandbox__/clock/advance", json={})).status_code == 400


async def test_reset_forgets_everything_and_can_set_the_balance(client: httpx.AsyncClient, state: SandboxState) -> None:
    job_id = (await client.post(GENERATE, json={"imageUrl": SAMPLE})).json()["data"]
    state.faults.http_error(path="/nowhere")
    stats = (await client.post("/__sandbox__/reset", json={"balance": 7})).json()
    assert (stats["charges"], stats["credits_spent"], stats["balance"]) == (0, 0, 7)
    assert stats["jobs"] == []
    assert stats["pending_faults"] == []
    assert stats["requests"] == {}
    assert (await client.get(RESULT, params={"id": job_id})).json()["code"] == 4002
    assert (await client.post("/__sandbox__/reset")).json()["balance"] == state.config.balance
