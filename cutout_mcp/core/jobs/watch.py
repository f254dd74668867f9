"""Single flight: every caller waiting on one video job shares one poll loop, and none is left in silence.

Ten assistants (or ten retries of one) waiting on the same job should cost
cutout.pro the requests of one. `JobWatcher.wait` takes a deadline and a
progress callback and always gives at least one fresh read, but the reading
happens in one background loop per job id, started in the lifespan's task
group:

- the loop reads, publishes the job to every waiter, then sleeps until its
  next poll (`PollPolicy`) or the earliest waiter's deadline, whichever is
  first, so each waiter gets a read at (or just after) its own deadline;
- between reads it wakes every `HEARTBEAT_SECONDS` and hands every waiter
  the last reading again, so each waiter can send a progress notification
  from local state (elapsed time, an estimate of the time left) without
  another upstream read. Clients draw progress bars and some reset their
  call timeout on each notification: silence reads as a hang. A read that
  itself takes longer (retries, a slow upstream) is covered the same way,
  timed by the event loop since the clock's sleep belongs to the loop, by
  one ticker task for every read under way (not a task per read: with 500
  jobs polled at once that was a task group, a task and two events each);
- each waiter sends its own progress notifications (from its own request)
  and returns at its own deadline; cancelling it removes only it;
- a waiter that joins with a fresh state (younger than the policy's shortest
  interval) uses it instead of asking for another read;
- when the last waiter leaves, the loop is cancelled; a read error ends the
  loop and is raised in every waiter, and the next waiter starts a new loop.

The clock is injected (`cutout_mcp.clock`), and only the loop sleeps, so a
fake clock advances exactly as it would for one waiter. When to read next and
what to tell a waiter between reads are `core.jobs.pace`'s.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from cutout_mcp.clock import Clock
from cutout_mcp.core.jobs.pace import Pace, PollPolicy, ProgressCallback, ProgressReporter, Reading
from cutout_mcp.core.results import VideoJob
from cutout_mcp.logs import call_fields
from cutout_mcp.telemetry import span

if TYPE_CHECKING:
    from cutout_mcp.upstream.models import UpstreamVideoJob

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.5
"""Longest silence between two progress notifications while waiting (a margin under 3 s)."""


ReadJob = Callable[[int], Awaitable["UpstreamVideoJob"]]
OnUpdate = Callable[[VideoJob], Awaitable[None]]


@dataclass(eq=False)
class _Waiter:
    deadline: float


@dataclass(eq=False)
class _Watch:
    job_id: int
    waiters: set[_Waiter] = field(default_factory=set)
    latest: Reading | None = None
    error: BaseException | None = None
    """The read error that ended the loop, raised in every waiter."""
    told: anyio.Event = field(default_factory=anyio.Event)
    """Set when the waiters are handed `latest` (or `error`), then replaced: one event for all of them."""
    last_told: float = -math.inf
    """When the waiters were last handed a reading (a read or a heartbeat)."""
    read_now: bool = False
    sleep_scope: anyio.CancelScope | None = None
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    def wake(self) -> None:
        """Make the loop reconsider its sleep (a waiter came or went)."""
        if self.sleep_scope is not None:
            self.sleep_scope.cancel()

    def tell(self, now: float) -> None:
        """Hand every waiter the last reading again: a heartbeat from local state, no upstream read."""
        self.last_told = now
        self.told.set()
        self.told = anyio.Event()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.told.set()


class JobWatcher:
    """The registry of poll loops, one per job id that someone is waiting on."""

    def __init__(
        self,
        read: ReadJob,
        clock: Clock,
        policy: PollPolicy,
        on_update: OnUpdate | None = None,
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        self._read = read
        self._clock = clock
        self._policy = policy
        self._on_update = on_update
        self._heartbeat = heartbeat
        self._watches: dict[int, _Watch] = {}
        self._tg: TaskGroup | None = None
        self._reading: dict[_Watch, float] = {}
        """Watches whose read is under way, with the event-loop time they were last told."""
        self._ticker: anyio.CancelScope | None = None

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

    def statuses(self) -> dict[str, int]:
        """The unfinished jobs watched now, by status (`queued` until the first read): the metrics' gauge."""
        counts = {"queued": 0, "processing": 0}
        for watch in self._watches.values():
            status = "queued" if watch.latest is None else watch.latest.job.status
            if status in counts:
                counts[status] += 1
        return counts

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
        clock = self._clock
        now = clock.now()
        waiter = _Waiter(deadline=now + max(0.0, wait_seconds))
        reporter = ProgressReporter(on_progress, job_id, now)
        watch = self._watches.get(job_id)
        if watch is None:
            watch = self._watches[job_id] = _Watch(job_id)
            self._tg.start_soon(self._loop, watch)
        watch.waiters.add(waiter)
        told = watch.told  # taken before any await, so no telling is missed
        try:
            latest = watch.latest
            if latest is not None:  # say at once where the job stands, as far as this server knows
                await reporter.report(latest, now)
                if now - latest.at < self._policy.min_interval and (latest.job.finished or waiter.deadline <= now):
                    return _as_mine(latest.job, credits_charged)
            if latest is not None and waiter.deadline <= now:
                watch.read_now = True
            watch.wake()
            while True:
                await told.wait()
                told = watch.told
                if watch.error is not None:
                    raise watch.error
                reading = watch.latest
                await reporter.report(reading, clock.now())
                # only a read at or after the deadline ends the wait: a heartbeat never does
                if reading is not None and (reading.job.finished or reading.at >= waiter.deadline):
                    return _as_mine(reading.job, credits_charged)
        finally:
            watch.waiters.discard(waiter)
            if not watch.waiters:
                watch.scope.cancel()
                if self._watches.get(job_id) is watch:
                    del self._watches[job_id]
            else:
                watch.wake()

    async def _loop(self, watch: _Watch) -> None:
        with call_fields(job_id=watch.job_id):  # the loop's log lines name its job
            await self._poll(watch)

    async def _poll(self, watch: _Watch) -> None:
        clock, policy = self._clock, self._policy
        pace = Pace()
        next_read = clock.now()
        last_read = -math.inf
        watch.last_told = next_read
        try:
            with watch.scope:
                while watch.waiters:
                    now = clock.now()
                    # a waiter whose deadline came after the last read is owed a read at it
                    due = min([next_read, *(w.deadline for w in watch.waiters if w.deadline > last_read)])
                    if now < due and not watch.read_now:
                        beat = watch.last_told + self._heartbeat
                        if now >= beat:
                            watch.tell(now)
                            continue
                        with anyio.CancelScope() as sleep_scope:
                            watch.sleep_scope = sleep_scope
                            await clock.sleep(min(due, beat) - now)
                        watch.sleep_scope = None
                        continue
                    watch.read_now = False
                    try:
                        upstream = await self._read_telling(watch)
                    except Exception as exc:
                        watch.fail(exc)
                        return
                    job = VideoJob.from_upstream(upstream)
                    last_read = now = clock.now()
                    pace.observe(job, now)
                    watch.latest = Reading.of(job, now, pace)
                    await self._update(job)  # first, so the ledger is never behind what a caller was told
                    watch.tell(now)
                    if job.finished or not any(w.deadline > now for w in watch.waiters):
                        return  # every waiter has what it waited for
                    next_read = now + policy.next_interval(job, pace)
        finally:
            if self._watches.get(watch.job_id) is watch:
                del self._watches[watch.job_id]

    async def _read_telling(self, watch: _Watch) -> UpstreamVideoJob:
        """One read; while it takes longer than a heartbeat, `_tick` tells the waiters the last reading.

        Timed by the event loop, not the clock: the clock's sleep is the loop's own (a fake clock's
        sleep moves time for everyone), and a read is not a sleep.
        """
        if math.isfinite(self._heartbeat):
            self._reading[watch] = anyio.current_time()
            if self._ticker is None and self._tg is not None:
                self._ticker = anyio.CancelScope()
                self._tg.start_soon(self._tick, self._ticker)
        try:
            with span("cutout.video.poll", **{"cutout.job_id": watch.job_id}):
                return await self._read(watch.job_id)
        finally:
            self._reading.pop(watch, None)
            if not self._reading and self._ticker is not None:
                self._ticker.cancel()
                self._ticker = None

    async def _tick(self, scope: anyio.CancelScope) -> None:
        """Heartbeats for every read under way, each a heartbeat after its start or its last one."""
        with scope:
            while self._reading:
                now = anyio.current_time()
                due = min(self._reading.values()) + self._heartbeat
                if now < due:
                    await anyio.sleep(due - now)
                    continue
                told_at = self._clock.now()
                for watch, since in list(self._reading.items()):
                    if since + self._heartbeat <= now:
                        watch.tell(told_at)
                        self._reading[watch] = now
        if self._ticker is scope:
            self._ticker = None

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
