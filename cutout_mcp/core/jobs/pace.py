"""How fast a video job moves, when to read it next, and where it stands between reads.

`Pace` learns how fast a job moves (queue positions, render percentage) from its reads;
`PollPolicy` turns that into the time to the next read, and `Reading` into an estimate of where the
job is now; `ProgressReporter` turns readings into progress notifications that always increase.
`core.jobs.watch` runs the reads.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cutout_mcp.core.results import VideoJob, describe_job

ProgressCallback = Callable[[float, float, str], Awaitable[None]]
"""`(progress, total, message)`, the arguments of an MCP progress notification."""

ESTIMATE_CEILING = 99.0
"""An extrapolated percentage stops here: only a read says a job is done."""


@dataclass(frozen=True)
class Sample:
    """One reading of a job: its percentage and queue position at a moment."""

    percentage: float
    at: float
    wait_number: int = 0


@dataclass
class Pace:
    """How fast a job moves, learned from its reads: queue positions per second, percent per second.

    Each rate is measured from the first read of its phase to the latest one, which smooths out
    upstream's coarse steps (whole queue positions, whole percents).
    """

    queue_from: Sample | None = None
    render_from: Sample | None = None
    last: Sample | None = None

    def observe(self, job: VideoJob, at: float) -> None:
        sample = Sample(job.percentage, at, job.wait_number)
        if job.status == "queued":
            if self.queue_from is None or job.wait_number > self.queue_from.wait_number:
                self.queue_from = sample  # a queue that grew starts a new measurement
        elif job.status == "processing" and (self.render_from is None or job.percentage < self.render_from.percentage):
            self.render_from = sample
        self.last = sample

    @property
    def seconds_per_queued_job(self) -> float | None:
        """How long one queue position has taken, once the position has fallen at least once."""
        start, last = self.queue_from, self.last
        if start is None or last is None or last.at <= start.at or last.wait_number >= start.wait_number:
            return None
        return (last.at - start.at) / (start.wait_number - last.wait_number)

    @property
    def render_rate(self) -> float | None:
        """Percent per second while rendering, once the percentage has risen at least once."""
        start, last = self.render_from, self.last
        if start is None or last is None or last.at <= start.at or last.percentage <= start.percentage:
            return None
        return (last.percentage - start.percentage) / (last.at - start.at)


@dataclass(frozen=True)
class PollPolicy:
    """How long to wait between two reads of a job.

    A queued job is read less often the more jobs are ahead of it, at the pace
    its queue has actually moved (`seconds_per_queued_job` is only the guess
    until two reads show it); a rendering job is read about twice before its
    estimated finish, so the end is noticed quickly without polling a long
    render every second.
    """

    min_interval: float = 2.0
    max_interval: float = 15.0
    default_processing_interval: float = 4.0
    seconds_per_queued_job: float = 2.0

    def next_interval(self, job: VideoJob, pace: Pace) -> float:
        rate = pace.render_rate
        if job.status == "queued":
            per_job = pace.seconds_per_queued_job
            wanted = self.min_interval + (self.seconds_per_queued_job if per_job is None else per_job) * job.wait_number
        elif rate is not None:
            wanted = (100.0 - job.percentage) / rate / 2
        else:
            wanted = self.default_processing_interval
        return max(self.min_interval, min(self.max_interval, wanted))


@dataclass(frozen=True)
class Reading:
    """A job as last read, when, and its pace then: enough to say where it is now without reading again."""

    job: VideoJob
    at: float
    render_rate: float | None = None
    seconds_per_queued_job: float | None = None

    @classmethod
    def of(cls, job: VideoJob, at: float, pace: Pace) -> Reading:
        return cls(job, at, pace.render_rate, pace.seconds_per_queued_job)

    def progress(self, now: float) -> float:
        """Progress on the 0-100 scale at `now`, extrapolated from the read at the pace known then.

        While queued the percentage stays 0, so the queue's advance is shown within 0-1: 1 / (jobs
        ahead + 2), moving towards the next position's value as the queue's pace says it should.
        """
        job, elapsed = self.job, max(0.0, now - self.at)
        if job.status == "queued":
            here, next_position = 1.0 / (job.wait_number + 2), 1.0 / (job.wait_number + 1)
            if self.seconds_per_queued_job is None:
                return here
            return here + (next_position - here) * min(0.9, elapsed / self.seconds_per_queued_job)
        if job.status == "processing" and self.render_rate is not None:
            return max(job.percentage, min(ESTIMATE_CEILING, job.percentage + self.render_rate * elapsed))
        return job.percentage

    def seconds_left(self, now: float) -> float | None:
        """Until rendering starts (queued) or until done (rendering), when the pace is known."""
        job, elapsed = self.job, max(0.0, now - self.at)
        if job.status == "queued" and self.seconds_per_queued_job is not None:
            return max(0.0, job.wait_number * self.seconds_per_queued_job - elapsed)
        if job.status == "processing" and self.render_rate is not None:
            return (100.0 - self.progress(now)) / self.render_rate
        return None

    def message(self, now: float, waited: float) -> str:
        job = self.job
        return describe_job(
            job.id, job.status, job.percentage, job.wait_number, seconds_left=self.seconds_left(now), waited=waited
        )


@dataclass
class ProgressReporter:
    """Turns readings into MCP progress notifications that always increase.

    The MCP specification requires each notification's `progress` to exceed the last one's. The value
    is the reading's estimate (`Reading.progress`); when that is not above the last value sent (a
    heartbeat with no new pace, a read below an earlier estimate) the next representable number
    above it is sent instead, so a notification goes out every time and still increases.
    """

    send: ProgressCallback | None
    job_id: int = 0
    started: float = 0.0
    last: float = field(default=-1.0)

    async def report(self, reading: Reading | None, now: float) -> None:
        if self.send is None:
            return
        waited = max(0.0, now - self.started)
        if reading is None:  # the first read is still under way
            value, message = 0.0, f"Checking on video job {self.job_id} at cutout.pro (waited {waited:.0f} s)."
        else:
            value, message = reading.progress(now), reading.message(now, waited)
        value = max(value, math.nextafter(self.last, math.inf))
        self.last = value
        await self.send(value, 100.0, message)
