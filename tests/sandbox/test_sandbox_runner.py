"""The sandbox on a real loopback socket under uvicorn."""

from __future__ import annotations

import httpx
import pytest

from cutout_mcp.sandbox import SandboxConfig, run_sandbox

pytestmark = pytest.mark.anyio


async def test_run_sandbox_serves_on_loopback_and_drops_connections_for_real() -> None:
    async with run_sandbox(SandboxConfig(fetch_remote=False)) as sandbox:
        assert sandbox.base_url.startswith("http://127.0.0.1:")
        assert not sandbox.base_url.endswith(":0")
        async with httpx.AsyncClient(base_url=sandbox.base_url, headers={"APIKEY": sandbox.api_key}) as client:
            payload = {"imageUrl": sandbox.url("/samples/photo.jpg")}
            body = (await client.post("/api/v2/imageToVideo/generate", json=payload)).json()
            assert body["code"] == 0
            sandbox.state.faults.disconnect()
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post("/api/v2/imageToVideo/generate", json=payload)
        assert sandbox.state.charges == 2


def test_only_loopback_hosts_are_accepted() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SandboxConfig(host="0.0.0.0")
    assert SandboxConfig(host="::1").host == "::1"
