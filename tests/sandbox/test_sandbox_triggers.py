"""Trigger tokens and the balance produce every documented error on demand."""

from __future__ import annotations

import httpx
import pytest

from cutout_mcp import catalog
from cutout_mcp.sandbox import ManualClock, SandboxConfig, SandboxState, create_app

from .helpers import BASE, EDIT, GENERATE, SAMPLE, edit_body

pytestmark = pytest.mark.anyio

INAPPROPRIATE = (9011, "Image contains inappropriate content, cannot be processed.")
ABNORMAL = (1001, "The server is abnormal. Please contact us.")
NO_BALANCE = (1001, "Insufficient balance")


@pytest.mark.parametrize(
    ("token", "expected"),
    [("sandbox:inappropriate", INAPPROPRIATE), ("sandbox:abnormal", ABNORMAL), ("sandbox:no-balance", NO_BALANCE)],
)
@pytest.mark.parametrize("where", ["prompt", "url"])
async def test_video_tokens_reject_and_charge_nothing(
    client: httpx.AsyncClient, state: SandboxState, token: str, expected: tuple[int, str], where: str
) -> None:
    payload = {"imageUrl": SAMPLE, "prompt": f"a cat {token}"}
    if where == "url":
        payload = {"imageUrl": f"{SAMPLE}?tag={token}"}
    body = (await client.post(GENERATE, json=payload)).json()
    assert (body["code"], body["msg"]) == expected
    assert body["data"] is None
    assert state.charges == 0
    assert state.balance == state.config.balance


@pytest.mark.parametrize(
    ("token", "expected"),
    [("sandbox:inappropriate", INAPPROPRIATE), ("sandbox:abnormal", ABNORMAL), ("sandbox:no-balance", NO_BALANCE)],
)
async def test_edit_tokens_reject_and_charge_nothing(
    client: httpx.AsyncClient, state: SandboxState, token: str, expected: tuple[int, str]
) -> None:
    body = (await client.post(EDIT, json=edit_body(imageUrl=[SAMPLE, f"{SAMPLE}#{token}"]))).json()
    assert (body["code"], body["msg"]) == expected
    assert state.charges == 0


async def test_edit_job_fails_token_answers_status_0_with_a_reason(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    body = (await client.post(EDIT, json=edit_body(prompt="sandbox:job-fails please"))).json()
    assert body["code"] == 0
    data = body["data"]
    assert data["status"] == 0
    assert data["imageUrl"] is None
    assert isinstance(data["failReason"], str)
    assert data["failReason"]
    assert state.charges == 1
    assert (await client.get(f"/media/edit/{data['id']}.jpg")).status_code == 404


async def test_a_call_costing_more_than_the_balance_is_refused_and_free(clock: ManualClock) -> None:
    state = SandboxState(SandboxConfig(clock=clock, balance=catalog.VIDEO_CREDITS + 3, fetch_remote=False))
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers={"APIKEY": "sandbox-key"}) as c:
        assert (await c.post(GENERATE, json={"imageUrl": SAMPLE})).json()["code"] == 0
        assert state.balance == 3
        second = (await c.post(GENERATE, json={"imageUrl": SAMPLE})).json()
        assert (second["code"], second["msg"]) == NO_BALANCE
        edit = (await c.post(EDIT, json=edit_body(model="gpt-image-1"))).json()  # 4 credits > 3
        assert (edit["code"], edit["msg"]) == NO_BALANCE
    assert state.balance == 3
    assert state.charges == 1
    assert state.credits_spent == catalog.VIDEO_CREDITS
