"""Shared fixtures: a fake clock, settings pointing at a mocked upstream, and both protocol modes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import respx
from mcp import Client

from cutout_mcp.config import Settings
from cutout_mcp.server import build_server
from cutout_mcp.upstream.client import RetryPolicy

from .pgserver import PgServer, find_bindir
from .s3server import S3Server, run_s3_server

API_KEY = "test-key-5f3b9c2e"
BASE_URL = "https://api.cutout.test"
MODES = ["auto", "legacy"]
"""`auto` negotiates 2026-07-28 in process; `legacy` the 2025-11-25 initialize handshake."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    """A clock whose sleep advances time at once, recording every sleep."""

    def __init__(self) -> None:
        self.time = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds
        await anyio.lowlevel.checkpoint()


class IdleClock(FakeClock):
    """A fake clock whose time passes only once every other task waits, as real time would.

    `FakeClock` moves time the moment a sleep starts, so a task woken just before reads a later time
    than it was woken at; here a sleeper first lets everything runnable run.
    """

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await anyio.wait_all_tasks_blocked()
        self.time += seconds
        await anyio.lowlevel.checkpoint()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def private_state_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built without a state_dir (and spawned servers) keep their job ledger out of the real home."""
    home = tmp_path_factory.mktemp("state-home")
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    monkeypatch.setenv("LOCALAPPDATA", str(home))
    monkeypatch.delenv("CUTOUT_STATE_DIR", raising=False)
    monkeypatch.delenv("CUTOUT_CREDIT_BUDGET", raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Tool tests mock only cutout.pro; pre-flight image fetching has its own tests (test_preflight.py).
    return Settings(api_key=API_KEY, base_url=BASE_URL, wait_seconds=30, preflight=False, state_dir=tmp_path / "state")


@pytest.fixture
def upstream() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE_URL, assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)


@asynccontextmanager
async def connect(settings: Settings, mode: str, clock: FakeClock, **kwargs: Any) -> AsyncIterator[Client]:
    server = build_server(settings, clock=clock, retry=FAST_RETRY, **kwargs)
    async with Client(server, mode=mode) as client:
        yield client


def envelope(data: Any = None, code: int = 0, msg: str | None = None) -> dict[str, Any]:
    return {"code": code, "data": data, "msg": msg, "time": 1753241547143, "requestId": "req-0123456789abcdef"}


def video_job(
    job_id: int = 700842286474565, status: int = 0, percentage: float = 0, wait_number: int = 0, **extra: Any
) -> dict[str, Any]:
    job: dict[str, Any] = {
        "id": job_id,
        "userId": 528874,
        "imageUrl": "https://img.example.com/cat.jpg",
        "originalPrompt": "the cat blinks",
        "resultUrl": "",
        "cover": "",
        "width": 0,
        "height": 0,
        "status": status,
        "percentage": percentage,
        "waitNumber": wait_number,
        "createdAt": 1753240476000,
    }
    if status == 1:
        job.update(resultUrl="https://cdn.example.com/v.mp4", cover="https://cdn.example.com/c.jpg")
        job.update(width=1024, height=1024, percentage=100)
    job.update(extra)
    return job


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgServer]:
    """A real PostgreSQL cluster for the whole run (skipped only where its binaries are missing)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl): apt-get install postgresql")
    pytest.importorskip("psycopg_pool", reason="psycopg-pool missing: pip install -e '.[test]'")
    server = PgServer(bindir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(postgres: PgServer) -> str:
    """An empty database of its own for one test."""
    return postgres.new_database()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3-compatible server (SeaweedFS, SigV4 on) for the whole run; skipped only where `weed` or
    obstore is missing. Each test keeps to a prefix of its own (`s3_prefix`)."""
    yield from run_s3_server()


@pytest.fixture
def s3_prefix() -> str:
    """A fresh prefix in the test bucket, so a test sees only its own objects."""
    return f"t-{uuid.uuid4().hex[:12]}"
