"""One clock for everything that waits or stamps a time: the watcher, tasks, the ledger, the OAuth cache
and the sandbox.

`now()` is seconds since the Unix epoch that never go backwards (the wall clock read once, then advanced
by the monotonic clock), so the same reading serves as a timestamp and as an interval's end. Tests inject
`ManualClock` and run a minute-long wait in microseconds.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol, runtime_checkable

import anyio


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch; never less than an earlier reading."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: wall time at start plus monotonic elapsed time, so it never jumps backwards."""

    def __init__(self) -> None:
        self._wall0 = time.time()
        self._mono0 = time.monotonic()

    def now(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to (`advance`, or `sleep`, which advances at once).

    It starts at a fixed moment (the `createdAt` of the upstream documents' example) so timestamps in
    test output are reproducible.
    """

    DEFAULT_START = 1_753_240_476.0

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward and return the new time; time never goes back."""
        if seconds < 0:
            raise ValueError("a ManualClock cannot go backwards")
        self._now += float(seconds)
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await anyio.lowlevel.checkpoint()


def utc(clock: Clock) -> datetime:
    """The clock's reading as an aware UTC datetime."""
    return datetime.fromtimestamp(clock.now(), tz=timezone.utc)


def iso_utc(epoch: float) -> str:
    """ISO 8601 in UTC to the second, with a `Z`: how results show a moment."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
