"""Several real processes on one storage: one submit per identical request, a budget held exactly,
and SQLite commits that survive `kill -9`. Both backends, the real paid path, no MCP in between."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from cutout_mcp.config import Settings
from cutout_mcp.core.storage import open_storage

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = 4

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "state")
    return str(request.getfixturevalue("database_url"))


def run_workers(mode: str, store: str, tasks: int, arg: str = "") -> list[dict[str, Any]]:
    """Start PROCESSES workers, release them together, and collect every outcome line."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.storage_worker", mode, store, str(tasks), arg],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outcomes: list[dict[str, Any]] = []
        for worker in workers:
            out, _ = worker.communicate(timeout=120)
            assert worker.returncode == 0
            outcomes += [json.loads(line) for line in out.splitlines()]
        return outcomes
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def test_identical_requests_from_many_processes_are_submitted_once(store: str, tmp_path: Path) -> None:
    log = tmp_path / "submits.log"
    outcomes = run_workers("submit", store, 25, str(log))
    assert len(outcomes) == PROCESSES * 25
    submits = Counter(log.read_text().splitlines())
    assert len(submits) == 5
    assert set(submits.values()) == {1}, f"one upstream submit per identical request: {submits}"
    jobs: dict[str, set[int]] = defaultdict(set)
    paid: Counter[str] = Counter()
    for outcome in outcomes:
        jobs[outcome["url"]].add(outcome["job"])
        paid[outcome["url"]] += outcome["credits"]
    assert all(len(ids) == 1 for ids in jobs.values()), "every caller got the one job"
    assert set(paid.values()) == {5}, "each request was paid for once"


async def test_a_budget_is_never_exceeded_by_many_processes(store: str) -> None:
    outcomes = run_workers("budget", store, 30, "203")  # 120 calls of 5 credits against 203
    granted = sum(1 for outcome in outcomes if outcome["granted"])
    assert granted == 40
    async with open_storage(_settings(store)) as storage:
        credits = await storage.credits("local", 203)
    assert (credits.spent_total, credits.spent, credits.remaining) == (200, 200, 3)


async def test_kill_9_mid_writes_loses_no_committed_row(tmp_path: Path) -> None:
    store = str(tmp_path / "state")
    writer = subprocess.Popen(  # noqa: ASYNC220 - a child killed below
        [sys.executable, "-m", "tests.storage_worker", "write", store, "1"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready"
    writer.stdin.write("go\n")
    writer.stdin.flush()
    committed = [int(writer.stdout.readline()) for _ in range(300)]
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    async with open_storage(_settings(store)) as storage:
        ids = {job.id for job in await storage.list_jobs("local", limit=100_000)}
        spent = (await storage.credits("local", None)).spent
    assert set(committed) <= ids, "every row reported committed before the kill is there"
    # a credit reservation is committed before its submit, so the one in flight at the kill stays counted
    assert 5 * len(ids) <= spent <= 5 * (len(ids) + 1)


def _settings(store: str) -> Settings:
    if store.startswith("postgresql://"):
        return Settings(database_url=store)
    return Settings(state_dir=Path(store))


def test_concurrent_paid_calls_of_several_principals_never_pass_any_limit(store: str, tmp_path: Path) -> None:
    log = tmp_path / "allowance.log"
    outcomes = run_workers("allowance", store, 12, str(log))  # 4 processes x 4 calls per principal
    granted = Counter(o["who"] for o in outcomes if o["granted"])
    refused = {(o["who"], o["limit"]) for o in outcomes if not o["granted"]}
    sent = Counter(log.read_text().split())
    assert granted == {"alice": 4, "ci-bot": 2 * PROCESSES, "carol": 3}, "exactly what fits each limit"
    assert sent == granted, "the upstream saw exactly the calls that fit"
    assert refused == {("alice", "allowance"), ("ci-bot", "session"), ("carol", "rate")}
