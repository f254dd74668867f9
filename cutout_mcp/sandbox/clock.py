"""Time sources for the sandbox.

Job progress is computed from elapsed time instead of background tasks, so a
test that swaps in `ManualClock` can move a job from queued to finished with
`advance()` and never sleep.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the current time in seconds since the Unix epoch."""

    def now(self) -> float: ...


class SystemClock:
    """Wall time that never jumps backwards: wall clock at start plus monotonic elapsed."""

    def __init__(self) -> None:
        self._wall0 = time.time()
        self._mono0 = time.monotonic()

    def now(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0)


class ManualClock:
    """A clock that only moves when told to, for deterministic tests.

    It starts at a fixed moment (the `createdAt` of the upstream example) so
    timestamps in test output are reproducible.
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


def now_ms(clock: Clock) -> int:
    """The API's timestamps are integer milliseconds."""
    return int(clock.now() * 1000)
