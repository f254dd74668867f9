"""Single flight: waiters on one job share one poll loop, each with its own deadline and progress."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from cutout_mcp.core.results import VideoJob
from cutout_mcp.core.watch import JobWatcher, PollPolicy
from cutout_mcp.upstream.errors import ServiceError
from cutout_mcp.upstream.models import UpstreamVideoJob

from .conftest import FakeClock, video_job

pytestmark = pytest.mark.anyio

JOB = 700842286474565


class Upstream:
    """Answers reads with the given states in turn, repeating the last; counts the reads."""

    def __init__(self, *states: dict[str, Any]) -> None:
        self.states = [UpstreamVideoJob.model_validate(state) for state in states]
        self.reads = 0
        self.failure: Exception | None = None

    async def read(self, job_id: int) -> UpstreamVideoJob:
        self.reads += 1
        if self.failure is not None:
            raise self.failure
        return self.states[min(self.reads, len(self.states)) - 1]


class GateClock(FakeClock):
    """A fake clock whose sleeps wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = anyio.Event()

    async def sleep(self, seconds: float) -> None:
        await self.gate.wait()
        await super().sleep(seconds)


def rendering() -> Upstream:
    return Upstream(video_job(percentage=10), video_job(percentage=40), video_job(percentage=90), video_job(status=1))


async def run_waiters(count: int, upstream: Upstream, clock: FakeClock, **wait: Any) -> list[VideoJob]:
    results: list[VideoJob] = []
    watcher = JobWatcher(upstream.read, clock, PollPolicy())
    async with watcher.running(), anyio.create_task_group() as tg:
        for _ in range(count):

            async def one() -> None:
                results.append(await watcher.wait(JOB, wait.get("wait_seconds", 600)))

            tg.start_soon(one)
    return results


async def test_ten_waiters_make_the_reads_of_one() -> None:
    alone = rendering()
    await run_waiters(1, alone, FakeClock())

    shared = rendering()
    clock = GateClock()
    clock.gate.set()
    results = await run_waiters(10, shared, clock)
    assert len(results) == 10
    assert all(job.status == "succeeded" for job in results)
    assert shared.reads == alone.reads == 4


async def test_each_waiter_gets_its_own_progress_and_deadline() -> None:
    upstream = Upstream(video_job(percentage=10), video_job(percentage=20), video_job(percentage=30))
    clock = FakeClock()
    watcher = JobWatcher(upstream.read, clock, PollPolicy())
    progress: dict[str, list[float]] = {"short": [], "long": []}
    returned: dict[str, float] = {}

    def sender(name: str) -> Callable[[float, float, str], Any]:
        async def send(value: float, total: float, message: str) -> None:
            progress[name].append(value)

        return send

    start = clock.now()
    async with watcher.running(), anyio.create_task_group() as tg:
        for name, seconds in (("short", 5.0), ("long", 40.0)):

            async def one(name: str = name, seconds: float = seconds) -> None:
                job = await watcher.wait(JOB, seconds, on_progress=sender(name))
                assert job.status == "processing"
                returned[name] = clock.now() - start

            tg.start_soon(one)
    assert returned == {"short": pytest.approx(5), "long": pytest.approx(40)}
    assert progress["short"]
    assert progress["long"]
    assert progress["long"][-1] == 30
    assert watcher.waiting(JOB) == 0


async def test_cancelling_one_waiter_leaves_the_others_polling_and_the_last_one_stops_the_loop() -> None:
    upstream = rendering()
    clock = GateClock()
    watcher = JobWatcher(upstream.read, clock, PollPolicy())
    results: list[VideoJob] = []
    async with watcher.running(), anyio.create_task_group() as tg:
        cancelled = anyio.CancelScope()

        async def doomed() -> None:
            with cancelled:
                await watcher.wait(JOB, 600)

        async def patient() -> None:
            results.append(await watcher.wait(JOB, 600))

        tg.start_soon(doomed)
        tg.start_soon(patient)
        await anyio.wait_all_tasks_blocked()
        assert watcher.waiting(JOB) == 2
        cancelled.cancel()
        await anyio.wait_all_tasks_blocked()
        assert watcher.waiting(JOB) == 1
        clock.gate.set()
    assert [job.status for job in results] == ["succeeded"]
    assert upstream.reads == 4

    stopped = Upstream(video_job(percentage=10))
    clock = GateClock()
    watcher = JobWatcher(stopped.read, clock, PollPolicy())
    async with watcher.running():
        async with anyio.create_task_group() as tg:
            tg.start_soon(watcher.wait, JOB, 600)
            await anyio.wait_all_tasks_blocked()  # it has read once and waits for the next read
            tg.cancel_scope.cancel()
        clock.gate.set()
        await anyio.wait_all_tasks_blocked()
        assert watcher.waiting(JOB) == 0
        assert stopped.reads == 1, "no read after the last waiter left"


async def test_a_read_error_reaches_every_waiter_and_the_next_wait_starts_afresh() -> None:
    upstream = Upstream(video_job(percentage=10), video_job(status=1))
    upstream.failure = ServiceError("cutout.pro is down")
    clock = FakeClock()
    watcher = JobWatcher(upstream.read, clock, PollPolicy())
    errors: list[Exception] = []
    async with watcher.running():
        async with anyio.create_task_group() as tg:
            for _ in range(3):

                async def one() -> None:
                    try:
                        await watcher.wait(JOB, 60)
                    except ServiceError as exc:
                        errors.append(exc)

                tg.start_soon(one)
        assert len(errors) == 3
        assert upstream.reads == 1
        upstream.failure = None
        assert (await watcher.wait(JOB, 60)).status in ("processing", "succeeded")


async def test_a_fresh_state_is_shared_and_wait_zero_reads_once() -> None:
    upstream = Upstream(video_job(percentage=10))
    clock = FakeClock()
    watcher = JobWatcher(upstream.read, clock, PollPolicy())
    async with watcher.running():
        first = await watcher.wait(JOB, 0)
        assert first.percentage == 10
        assert upstream.reads == 1
        assert clock.sleeps == []
        await watcher.wait(JOB, 0)
        assert upstream.reads == 2, "a finished watch is gone: the next wait reads afresh"
