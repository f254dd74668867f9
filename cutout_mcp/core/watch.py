"""Single flight: every caller waiting on one video job shares one poll loop.

Ten assistants (or ten retries of one) waiting on the same job should cost
cutout.pro the requests of one. `JobWatcher.wait` takes a deadline and a
progress callback and always gives at least one fresh read, but the reading
happens in one background loop per job id, started in the lifespan's task
group:

- the loop reads, publishes the job to every waiter, then sleeps until its
  next poll (`PollPolicy`) or the earliest waiter's deadline, whichever is
  first, so each waiter gets a read at its own deadline as before;
- each waiter sends its own progress notifications (from its own request)
  and returns at its own deadline; cancelling it removes only it;
- a waiter that joins with a fresh state (younger than the policy's shortest
  interval) uses it instead of asking for another read;
- when the last waiter leaves, the loop is cancelled; a read error ends the
  loop and is raised in every waiter, and the next waiter starts a new loop.

The clock is injected (`cutout_mcp.clock`), and only the loop sleeps, so a
fake clock advances exactly as it would for one waiter. `PollPolicy` decides
how long to wait between reads; `ProgressReporter` turns states into progress
notifications that always increase.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup

from cutout_mcp.clock import Clock
from cutout_mcp.core.results import VideoJob
from cutout_mcp.upstream.models import UpstreamVideoJob

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[float, float, str], Awaitable[None]]
"""`(progress, total, message)`, the arguments of an MCP progress notification."""


@dataclass(frozen=True)
class PollPolicy:
    """How long to wait between two reads of a job.

    A queued job is read less often the more jobs are ahead of it; a
    rendering job is read about twice before its estimated finish, so the end
    is noticed quickly without polling a long render every second.
    """

    min_interval: float = 2.0
    max_interval: float = 15.0
    default_processing_interval: float = 4.0
    seconds_per_queued_job: float = 2.0

    def next_interval(self, job: VideoJob, previous: Sample | None, now: float) -> float:
        if job.status == "queued":
            wanted = self.min_interval + self.seconds_per_queued_job * job.wait_number
        elif previous is not None and job.percentage > previous.percentage and now > previous.at:
            rate = (job.percentage - previous.percentage) / (now - previous.at)
            wanted = (100.0 - job.percentage) / rate / 2
        else:
            wanted = self.default_processing_interval
        return max(self.min_interval, min(self.max_interval, wanted))


@dataclass(frozen=True)
class Sample:
    """One earlier reading of a job, for the render rate."""

    percentage: float
    at: float


@dataclass
class ProgressReporter:
    """Turns job states into MCP progress notifications that always increase.

    The MCP specification requires each notification's `progress` to exceed
    the last one's. Progress is the upstream percentage (0-100). While a job
    is queued the percentage stays 0, so the queue's advance is shown within
    0-1 instead (1 / (jobs ahead + 2)), and a state that would not increase
    the value is not sent.
    """

    send: ProgressCallback | None
    last: float = field(default=-1.0)

    async def report(self, job: VideoJob) -> None:
        if self.send is None:
            return
        value = 1.0 / (job.wait_number + 2) if job.status == "queued" else job.percentage
        if value <= self.last:
            return
        self.last = value
        await self.send(value, 100.0, job.message)


ReadJob = Callable[[int], Awaitable[UpstreamVideoJob]]
OnUpdate = Callable[[VideoJob], Awaitable[None]]


@dataclass(eq=False)
class _Waiter:
    deadline: float
    changed: anyio.Event = field(default_factory=anyio.Event)
    job: VideoJob | None = None
    error: BaseException | None = None

    def deliver(self, job: VideoJob | None, error: BaseException | None = None) -> None:
        self.job, self.error = job, error
        self.changed.set()


@dataclass(eq=False)
class _Watch:
    job_id: int
    waiters: set[_Waiter] = field(default_factory=set)
    latest: VideoJob | None = None
    latest_at: float = -math.inf
    read_now: bool = False
    sleep_scope: anyio.CancelScope | None = None
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    def wake(self) -> None:
        """Make the loop reconsider its sleep (a waiter came or went)."""
        if self.sleep_scope is not None:
            self.sleep_scope.cancel()


class JobWatcher:
    """The registry of poll loops, one per job id that someone is waiting on."""

    def __init__(
        self,
        read: ReadJob,
        clock: Clock,
        policy: PollPolicy,
        on_update: OnUpdate | None = None,
    ) -> None:
        self._read = read
        self._clock = clock
        self._policy = policy
        self._on_update = on_update
        self._watches: dict[int, _Watch] = {}
        self._tg: TaskGroup | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[JobWatcher]:
        """Hold the task group the loops run in (the server's lifespan)."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                yield self
            finally:
                self._tg = None
                tg.cancel_scope.cancel()

    def waiting(self, job_id: int) -> int:
        """How many callers wait on `job_id` now (for tests and logs)."""
        watch = self._watches.get(job_id)
        return 0 if watch is None else len(watch.waiters)

    async def wait(
        self,
        job_id: int,
        wait_seconds: float,
        *,
        credits_charged: int = 0,
        on_progress: ProgressCallback | None = None,
    ) -> VideoJob:
        """The job once finished or at `wait_seconds`, whichever comes first; reads at least once."""
        if self._tg is None:
            raise RuntimeError("JobWatcher.wait needs the watcher running (see JobWatcher.running)")
        now = self._clock.now()
        waiter = _Waiter(deadline=now + max(0.0, wait_seconds))
        reporter = ProgressReporter(on_progress)
        watch = self._watches.get(job_id)
        if watch is None:
            watch = self._watches[job_id] = _Watch(job_id)
            self._tg.start_soon(self._loop, watch)
        watch.waiters.add(waiter)
        try:
            if watch.latest is not None and now - watch.latest_at < self._policy.min_interval:
                job = watch.latest
                await reporter.report(job)
                if job.finished or waiter.deadline <= self._clock.now():
                    return _as_mine(job, credits_charged)
            elif watch.latest is not None and waiter.deadline <= now:
                watch.read_now = True
            watch.wake()
            while True:
                await waiter.changed.wait()
                waiter.changed = anyio.Event()
                if waiter.error is not None:
                    raise waiter.error
                assert waiter.job is not None
                job = waiter.job
                await reporter.report(job)
                if job.finished or waiter.deadline <= self._clock.now():
                    return _as_mine(job, credits_charged)
        finally:
            watch.waiters.discard(waiter)
            if not watch.waiters:
                watch.scope.cancel()
                if self._watches.get(job_id) is watch:
                    del self._watches[job_id]
            else:
                watch.wake()

    async def _loop(self, watch: _Watch) -> None:
        clock, policy = self._clock, self._policy
        previous: Sample | None = None
        next_read = clock.now()
        try:
            with watch.scope:
                while watch.waiters:
                    now = clock.now()
                    # waiters whose deadline passed were served by the read at it and are leaving
                    due = min((w.deadline for w in watch.waiters if w.deadline > now), default=next_read)
                    due = min(due, next_read)
                    if now < due and not watch.read_now:
                        with anyio.CancelScope() as sleep_scope:
                            watch.sleep_scope = sleep_scope
                            await clock.sleep(due - now)
                        watch.sleep_scope = None
                        continue
                    watch.read_now = False
                    try:
                        upstream = await self._read(watch.job_id)
                    except Exception as exc:
                        for waiter in watch.waiters:
                            waiter.deliver(None, exc)
                        return
                    job = VideoJob.from_upstream(upstream)
                    now = clock.now()
                    watch.latest, watch.latest_at = job, now
                    await self._update(job)  # first, so the ledger is never behind what a caller was told
                    for waiter in watch.waiters:
                        waiter.deliver(job)
                    if job.finished or not any(w.deadline > now for w in watch.waiters):
                        return  # every waiter has what it waited for
                    next_read = now + policy.next_interval(job, previous, now)
                    previous = Sample(job.percentage, now)
        finally:
            if self._watches.get(watch.job_id) is watch:
                del self._watches[watch.job_id]

    async def _update(self, job: VideoJob) -> None:
        if self._on_update is None:
            return
        try:
            with anyio.CancelScope(shield=True):
                await self._on_update(job)
        except Exception:  # the ledger is a record, never a reason to fail a read
            logger.warning("Could not record the state of video job %s", job.id, exc_info=True)


def _as_mine(job: VideoJob, credits_charged: int) -> VideoJob:
    return (
        job if job.credits_charged == credits_charged else job.model_copy(update={"credits_charged": credits_charged})
    )
