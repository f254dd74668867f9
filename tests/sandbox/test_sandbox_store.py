"""The sandbox's object store: a bucket's four verbs on its own origin, presigned URLs that expire."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from cutout_mcp import catalog
from cutout_mcp.sandbox import ManualClock, Sandbox, SandboxConfig, run_sandbox
from cutout_mcp.sandbox.store import SandboxStore, SandboxStoreError

pytestmark = pytest.mark.anyio

KEY = "staged/abc123.jpg"
BODY = b"\xff\xd8\xff\xe0 not really a jpeg"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def sandbox(clock: ManualClock) -> AsyncIterator[Sandbox]:
    async with run_sandbox(SandboxConfig(clock=clock)) as running:
        yield running


@pytest.fixture
async def store(sandbox: Sandbox, clock: ManualClock) -> AsyncIterator[SandboxStore]:
    async with SandboxStore(sandbox.base_url, sandbox.api_key, ttl_seconds=600, clock=clock) as opened:
        yield opened


async def test_put_size_get_delete_round_trip(store: SandboxStore, sandbox: Sandbox) -> None:
    assert store.origin == sandbox.base_url
    assert await store.size(KEY) is None
    await store.put(KEY, BODY, "image/jpeg")
    assert await store.size(KEY) == len(BODY)
    assert await store.get(KEY, 1000) == BODY
    assert await store.get(KEY, 4) == BODY[:5], "at most max_bytes + 1"
    await store.delete(KEY)
    await store.delete(KEY)  # gone already: not an error
    assert await store.size(KEY) is None
    assert sandbox.state.staged == {}


async def test_a_presigned_get_serves_exactly_the_bytes_and_nothing_else_does(
    store: SandboxStore, clock: ManualClock
) -> None:
    await store.put(KEY, BODY, "image/jpeg")
    url = await store.signed_get_url(KEY)
    assert url.startswith(store.origin + "/staging/" + KEY + "?")
    async with httpx.AsyncClient() as http:
        good = await http.get(url)
        unsigned = await http.get(url.split("?")[0])
        tampered = await http.get(url[:-1] + ("0" if url[-1] != "0" else "1"))
        other_key = await http.get(url.replace("abc123", "abc124"))
        put_with_get_url = await http.put(url, content=b"overwrite")
        clock.advance(601)
        expired = await http.get(url)
    assert good.status_code == 200
    assert good.content == BODY
    assert good.headers["content-type"] == "image/jpeg"
    assert [r.status_code for r in (unsigned, tampered, other_key, put_with_get_url, expired)] == [403] * 5


async def test_a_presigned_put_lets_a_client_upload(store: SandboxStore, sandbox: Sandbox) -> None:
    url = await store.signed_put_url("uploads/u1/cat.jpg", "image/jpeg", 900)
    async with httpx.AsyncClient() as http:
        uploaded = await http.put(url, content=BODY, headers={"Content-Type": "image/jpeg"})
    assert uploaded.status_code == 200
    assert await store.get("uploads/u1/cat.jpg", 1000) == BODY


async def test_an_oversized_upload_is_kept_only_large_enough_to_be_refused(store: SandboxStore) -> None:
    url = await store.signed_put_url("uploads/u1/big.jpg", "image/jpeg", 900)
    async with httpx.AsyncClient() as http:
        await http.put(url, content=b"\0" * (catalog.MAX_IMAGE_BYTES + 4096))
    assert await store.size("uploads/u1/big.jpg") == catalog.MAX_IMAGE_BYTES + 1


async def test_a_store_that_cannot_be_reached_raises_its_own_error() -> None:
    async with SandboxStore("http://127.0.0.1:9", "k") as store:
        with pytest.raises(SandboxStoreError, match="did not answer a PUT"):
            await store.put(KEY, BODY, "image/jpeg")
