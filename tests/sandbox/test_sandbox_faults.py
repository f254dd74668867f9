"""Injected faults, above all a POST answer lost after the charge was taken."""

from __future__ import annotations

import anyio
import httpx
import pytest

from cutout_mcp.sandbox import Fault, SandboxState

from .helpers import EDIT, GENERATE, RESULT, SAMPLE, edit_body

pytestmark = pytest.mark.anyio


async def test_http_error_on_post_fires_after_the_charge(client: httpx.AsyncClient, state: SandboxState) -> None:
    state.faults.http_error(path=GENERATE, status=503)
    response = await client.post(GENERATE, json={"imageUrl": SAMPLE})
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "<html>" in response.text
    assert state.charges == 1, "the job was created and paid for although the client saw a 503"
    assert len(state.jobs) == 1


async def test_fault_before_processing_charges_nothing(client: httpx.AsyncClient, state: SandboxState) -> None:
    state.faults.http_error(path=EDIT, status=502, after=False)
    response = await client.post(EDIT, json=edit_body())
    assert response.status_code == 502
    assert state.charges == 0
    assert state.edits == {}


async def test_get_faults_fire_before_and_then_run_out(client: httpx.AsyncClient, state: SandboxState) -> None:
    job_id = (await client.post(GENERATE, json={"imageUrl": SAMPLE})).json()["data"]
    state.faults.http_error(path=RESULT, count=2, status=500)
    statuses = [(await client.get(RESULT, params={"id": job_id})).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert state.faults.pending == []
    assert state.faults.fired == 2


async def test_malformed_answer_is_a_200_that_is_not_json(client: httpx.AsyncClient, state: SandboxState) -> None:
    state.faults.malformed()
    response = await client.post(EDIT, json=edit_body())
    assert response.status_code == 200
    with pytest.raises(ValueError, match=r"Expecting|Unterminated"):
        response.json()
    assert state.charges == 1


async def test_disconnect_after_charge_raises_remote_protocol_error(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    state.faults.disconnect(path=GENERATE)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(GENERATE, json={"imageUrl": SAMPLE})
    assert state.charges == 1
    # the next request is served normally
    assert (await client.post(GENERATE, json={"imageUrl": SAMPLE})).json()["code"] == 0


async def test_slow_answer_outlasts_a_client_deadline_but_the_charge_stands(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    state.faults.slow(30.0, path=GENERATE)
    with anyio.move_on_after(0.2) as scope:
        await client.post(GENERATE, json={"imageUrl": SAMPLE})
    assert scope.cancelled_caught, "the answer must not arrive before the client gives up"
    assert state.charges == 1


async def test_slow_with_no_delay_still_answers_normally(client: httpx.AsyncClient, state: SandboxState) -> None:
    state.faults.slow(0.0)
    assert (await client.post(GENERATE, json={"imageUrl": SAMPLE})).json()["code"] == 0


async def test_fault_without_path_targets_api_endpoints_only(client: httpx.AsyncClient, state: SandboxState) -> None:
    state.faults.http_error()
    assert (await client.get("/samples/photo.jpg")).status_code == 200
    assert (await client.get("/__sandbox__/stats")).status_code == 200
    assert (await client.get(RESULT, params={"id": "1"})).status_code == 503


async def test_prefix_path_reaches_media(client: httpx.AsyncClient, state: SandboxState) -> None:
    state.faults.http_error(path="/samples/*", status=504)
    assert (await client.get("/samples/photo.jpg")).status_code == 504


async def test_faults_can_be_set_and_cleared_over_http(client: httpx.AsyncClient, state: SandboxState) -> None:
    response = await client.post(
        "/__sandbox__/faults",
        json=[{"kind": "disconnect", "path": EDIT}, {"kind": "http_error", "status": 429, "count": 2}],
    )
    assert response.status_code == 200
    pending = response.json()["pending"]
    assert [f["kind"] for f in pending] == ["disconnect", "http_error"]
    assert state.faults.pending[1] == Fault("http_error", status=429, count=2)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(EDIT, json=edit_body())
    assert state.charges == 1
    assert (await client.delete("/__sandbox__/faults")).json() == {"pending": []}
    assert (await client.post(GENERATE, json={"imageUrl": SAMPLE})).status_code == 200


@pytest.mark.parametrize(
    "bad",
    [{"kind": "explode"}, {"kind": "http_error", "status": 200}, {"kind": "slow", "count": 0}, {"kind": "x", "y": 1}],
)
async def test_invalid_fault_is_refused(client: httpx.AsyncClient, state: SandboxState, bad: object) -> None:
    response = await client.post("/__sandbox__/faults", json=bad)
    assert response.status_code == 400
    assert "error" in response.json()
    assert state.faults.pending == []


async def test_faulted_requests_are_counted(client: httpx.AsyncClient, state: SandboxState) -> None:
    state.faults.http_error(path=GENERATE)
    await client.post(GENERATE, json={"imageUrl": SAMPLE})
    await client.post(GENERATE, json={"imageUrl": SAMPLE})
    assert state.requests[GENERATE] == 2
    assert state.charges == 2


async def test_the_fault_log_names_the_charge_whose_answer_was_lost(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    state.faults.disconnect(path=GENERATE)
    state.faults.http_error(path=EDIT, status=502, after=False)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(GENERATE, json={"imageUrl": SAMPLE})
    assert (await client.post(EDIT, json=edit_body())).status_code == 502
    (job_id,) = state.jobs
    lost, refused = state.fault_log
    assert (lost["path"], lost["kind"], lost["after"], lost["charged_id"]) == (GENERATE, "disconnect", True, job_id)
    assert (refused["path"], refused["after"], refused["charged_id"]) == (EDIT, False, None)
    stats = (await client.get("/__sandbox__/stats")).json()
    assert stats["fault_log"] == state.fault_log
    assert stats["jobs"][0]["created_at"] < stats["jobs"][0]["ends_at"]
