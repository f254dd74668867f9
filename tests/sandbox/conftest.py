"""Fixtures: a sandbox on a ManualClock, reached in-process through httpx.ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from cutout_mcp.sandbox import ManualClock, SandboxConfig, SandboxState, create_app

from .helpers import BASE


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def config(clock: ManualClock) -> SandboxConfig:
    return SandboxConfig(clock=clock, queue_seconds=2.0, queue_depth=3, job_seconds=8.0, fetch_remote=False)


@pytest.fixture
def state(config: SandboxConfig) -> SandboxState:
    return SandboxState(config)


@pytest.fixture
async def client(state: SandboxState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers={"APIKEY": state.config.api_key}) as c:
        yield c
