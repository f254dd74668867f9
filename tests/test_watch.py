"""Single flight: waiters on one job share one poll loop, each with its own deadline and progress."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from cutout_mcp.core.jobs.pace import PollPolicy
from cutout_mcp.core.jobs.watch import HEARTBEAT_SECONDS, JobWatcher
from cutout_mcp.core.results import VideoJob
from cutout_mcp.upstream.errors import ServiceError
from cutout_mcp.upstream.models import UpstreamVideoJob

from .conftest import FakeClock, IdleClock, video_job

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
    clock = IdleClock()  # time passes only while everyone waits: a deadline cannot be met by luck
    watcher = JobWatcher(upstream.read, clock, PollPolicy())
    progress: dict[str, list[float]] = {"short": [], "long": []}
    messages: dict[str, list[str]] = {"short": [], "long": []}
    returned: dict[str, float] = {}

    def sender(name: str) -> Callable[[float, float, str], Any]:
        async def send(value: float, total: float, message: str) -> None:
            progress[name].append(value)
            messages[name].append(message)

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
    assert "rendering (30%" in messages["long"][-1]
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


class Timeline:
    """A job on the test's clock: queued `queue` s behind `depth` jobs, then rendering for `render` s."""

    def __init__(self, clock: FakeClock, queue: float, depth: int, render: float) -> None:
        self.clock, self.start = clock, clock.now()
        self.queue, self.depth, self.render = queue, depth, render
        self.reads = 0

    async def read(self, job_id: int) -> UpstreamVideoJob:
        self.reads += 1
        t = self.clock.now() - self.start
        if t < self.queue:
            state = video_job(wait_number=math.ceil(self.depth * (self.queue - t) / self.queue))
        elif t < self.queue + self.render:
            state = video_job(percentage=min(99, int(100 * (t - self.queue) / self.render)))
        else:
            state = video_job(status=1)
        return UpstreamVideoJob.model_validate(state)


async def follow(queue: float, depth: int, render: float, heartbeat: float) -> tuple[VideoJob, list[Any], int, float]:
    """Wait for a timeline job; returns the job, every notification (time, value, message), reads, start."""
    clock = IdleClock()
    timeline = Timeline(clock, queue, depth, render)
    watcher = JobWatcher(timeline.read, clock, PollPolicy(), heartbeat=heartbeat)
    told: list[tuple[float, float, str]] = []

    async def send(value: float, total: float, message: str) -> None:
        told.append((clock.now(), value, message))

    async with watcher.running():
        job = await watcher.wait(JOB, 600, on_progress=send)
    return job, told, timeline.reads, timeline.start


@pytest.mark.parametrize(
    ("queue", "depth", "render", "most_reads"),
    [(2, 5, 8, 5), (60, 15, 240, 30)],
    ids=["10 s job, 5 ahead", "5 min job, 15 ahead"],
)
async def test_progress_never_goes_quiet_and_costs_no_extra_read(
    queue: float, depth: int, render: float, most_reads: int
) -> None:
    """The issue's case (2 s queued behind 5, 8 s rendering) used to give 2 notifications, 12 s apart."""
    job, told, reads, start = await follow(queue, depth, render, HEARTBEAT_SECONDS)
    _, quiet, quiet_reads, _ = await follow(queue, depth, render, math.inf)
    assert job.status == "succeeded"
    times = [start] + [at for at, _, _ in told]
    assert max(b - a for a, b in itertools.pairwise(times)) <= 3.0, "never 3 s without a notification"
    assert reads == quiet_reads <= most_reads, "heartbeats come from local state, not from upstream"
    assert len(told) > len(quiet)
    values = [value for _, value, _ in told]
    assert all(a < b for a, b in itertools.pairwise(values)), "progress must strictly increase"
    assert values[-1] == 100
    messages = [message for _, _, message in told]
    assert all("waited" in m for m in messages[:-1])
    rendering = [m for m in messages if "rendering" in m]
    assert all("left" in m for m in rendering[-3:]), "an estimate once the render rate is known"


async def test_a_slow_read_is_not_silence() -> None:
    release, two_told = anyio.Event(), anyio.Event()

    async def slow_read(job_id: int) -> UpstreamVideoJob:
        await release.wait()
        return UpstreamVideoJob.model_validate(video_job(status=1))

    watcher = JobWatcher(slow_read, FakeClock(), PollPolicy(), heartbeat=0.01)
    told: list[str] = []

    async def send(value: float, total: float, message: str) -> None:
        told.append(message)
        if len(told) == 2:
            two_told.set()

    async with watcher.running(), anyio.create_task_group() as tg:
        tg.start_soon(lambda: watcher.wait(JOB, 60, on_progress=send))
        with anyio.fail_after(10):
            await two_told.wait()  # told twice while the first read is still under way
        release.set()
    assert told[0].startswith(f"Checking on video job {JOB}")
    assert told[-1] == f"Video job {JOB} is done (waited 0 s)."
