"""The job ledger on its own: durable, shared between processes, and the budget is one transaction."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cutout_mcp.config import default_state_dir
from cutout_mcp.core.ledger import FILE_NAME, BudgetExceededError, Ledger
from cutout_mcp.core.results import VideoJob

pytestmark = pytest.mark.anyio

IMAGE = "https://img.example.com/cat.jpg"


def processing(job_id: int, percentage: float) -> VideoJob:
    return VideoJob(
        id=job_id, status="processing", percentage=percentage, wait_number=0, credits_charged=0, message="m"
    )


async def test_the_file_is_in_wal_mode_and_rows_survive_reopening(tmp_path: Path) -> None:
    ledger = Ledger.open_in(tmp_path / "state")
    charge = await ledger.reserve("local", "video", 5, None)
    await ledger.record_video_job(charge, 42, "local", IMAGE, "blink", 5)
    await ledger.update_job(processing(42, 40))
    ledger.close()

    reopened = Ledger.open_in(tmp_path / "state")
    (job,) = await reopened.list_jobs("local")
    assert (job.id, job.status, job.percentage, job.prompt) == (42, "processing", 40, "blink")
    assert (await reopened.credits("local", None)).spent == 5
    reopened.close()
    with sqlite3.connect(tmp_path / "state" / FILE_NAME) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_two_ledgers_on_one_file_see_each_other_and_share_the_budget(tmp_path: Path) -> None:
    a, b = Ledger.open_in(tmp_path), Ledger.open_in(tmp_path)
    try:
        await a.record_video_job(await a.reserve("local", "video", 5, 12), 1, "local", IMAGE, None, 5)
        assert await b.find_active("local", IMAGE, None) is not None, "another process sees the job at once"
        await b.reserve("local", "edit", 4, 12)
        with pytest.raises(BudgetExceededError) as refused:
            await a.reserve("local", "edit", 4, 12)
        assert (refused.value.spent, refused.value.remaining) == (9, 3)
        assert "9 spent" in str(refused.value)
        assert "3 credits remaining" in str(refused.value)
    finally:
        a.close()
        b.close()


def test_concurrent_writers_in_two_connections_lose_nothing(tmp_path: Path) -> None:
    ledgers = [Ledger.open_in(tmp_path), Ledger.open_in(tmp_path)]

    def write(ledger: Ledger, first: int) -> None:
        for job_id in range(first, first + 100):
            charge = ledger._reserve("local", "video", 5, None)
            ledger._record_video_job(charge, job_id, "local", IMAGE, None, 5)

    threads = [threading.Thread(target=write, args=(ledger, 1 + 1000 * n)) for n, ledger in enumerate(ledgers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ledgers[0]._list_jobs("local", None, 1000)) == 200
    assert ledgers[1]._credits("local", None).spent == 200 * 5
    for ledger in ledgers:
        ledger.close()


WRITER = """
import sys
from cutout_mcp.core.ledger import Ledger
ledger = Ledger(sys.argv[1])
job_id = 0
while True:
    job_id += 1
    ledger._record_video_job(ledger._reserve("local", "video", 5, None), job_id, "local", "u", None, 5)
    print(job_id, flush=True)
"""


def test_kill_9_mid_writes_loses_no_committed_row(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    Ledger(path).close()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent
    )
    assert writer.stdout is not None
    committed = [int(writer.stdout.readline()) for _ in range(300)]
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    ledger = Ledger(path)
    ids = {job.id for job in ledger._list_jobs("local", None, 100_000)}
    assert set(committed) <= ids, "every row reported committed before the kill is there"
    # a credit reservation is committed before its submit, so the one in flight at the kill stays counted
    assert 5 * len(ids) <= ledger._credits("local", None).spent <= 5 * (len(ids) + 1)
    ledger.close()


async def test_listing_is_newest_first_filtered_bounded_and_per_principal(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / FILE_NAME)
    for job_id in range(1, 6):
        await ledger.record_video_job(None, job_id, "alice", f"{IMAGE}?{job_id}", None, 5)
    await ledger.record_video_job(None, 99, "bob", IMAGE, None, 5)
    await ledger.update_job(processing(2, 10))
    assert [j.id for j in await ledger.list_jobs("alice", limit=3)] == [5, 4, 3]
    assert [j.id for j in await ledger.list_jobs("alice", "processing")] == [2]
    assert [j.id for j in await ledger.list_jobs("bob")] == [99]
    assert await ledger.get_job("bob", 2) is None
    assert await ledger.owner(2) == "alice"
    ledger.close()


def test_default_state_dir_follows_each_platforms_convention() -> None:
    home = {"HOME": "/home/u"}
    assert default_state_dir(home, "linux") == Path("/home/u/.local/state/cutout-mcp")
    assert default_state_dir({**home, "XDG_STATE_HOME": "/x"}, "linux") == Path("/x/cutout-mcp")
    assert default_state_dir({**home, "XDG_STATE_HOME": "relative"}, "linux") == Path("/home/u/.local/state/cutout-mcp")
    assert default_state_dir(home, "darwin") == Path("/home/u/Library/Application Support/cutout-mcp")
    assert default_state_dir({**home, "LOCALAPPDATA": "/l"}, "win32") == Path("/l/cutout-mcp")
