"""The parts of waiting on a video job: the clock, the polling policy, progress reports.

`watch.JobWatcher` runs the one poll loop per job with these. The clock is
injected so tests run a minute-long wait in microseconds.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from cutout_mcp.upstream.models import VideoJob

ProgressCallback = Callable[[float, float, str], Awaitable[None]]
"""`(progress, total, message)`, the arguments of an MCP progress notification."""


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """The real clock."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


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

    def next_interval(self, job: VideoJob, previous: _Sample | None, now: float) -> float:
        if job.status == "queued":
            wanted = self.min_interval + self.seconds_per_queued_job * job.wait_number
        elif previous is not None and job.percentage > previous.percentage and now > previous.at:
            rate = (job.percentage - previous.percentage) / (now - previous.at)
            wanted = (100.0 - job.percentage) / rate / 2
        else:
            wanted = self.default_processing_interval
        return max(self.min_interval, min(self.max_interval, wanted))


@dataclass(frozen=True)
class _Sample:
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
