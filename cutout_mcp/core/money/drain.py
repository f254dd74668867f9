"""Stopping gracefully: the tool calls in flight, and the signal that the server is stopping.

On SIGTERM or SIGINT the transport stops taking requests and calls `Drain.stop(grace)`: calls that
arrive from then on are refused (`StoppingError`, nothing sent), waits for a video job end at once
with the job as it stands (`cut_short`), and the stop returns when the last call in flight has
answered or the grace period (`CUTOUT_SHUTDOWN_GRACE`) is over. A paid submit in flight is shielded
(`core.money.paid`), so it finishes and is recorded, and its caller gets the job id.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio

from cutout_mcp.errors import CutoutMcpError


class StoppingError(CutoutMcpError):
    """The server is shutting down; the call was not started."""

    def __init__(self) -> None:
        super().__init__(
            "The server is shutting down, so this call was not started; nothing was sent to cutout.pro or charged. "
            "Call again once it is back (an identical video request already submitted is recognised, not paid twice)."
        )


class Drain:
    """Counts the calls in flight; `stop` refuses new ones and waits for these (bounded)."""

    def __init__(self) -> None:
        self.stopping = False
        self._in_flight = 0
        self._idle: anyio.Event | None = None
        self._waits: set[anyio.CancelScope] = set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextmanager
    def call(self) -> Iterator[None]:
        """One tool call; refused with `StoppingError` once the server is stopping."""
        if self.stopping:
            raise StoppingError()
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0 and self._idle is not None:
                self._idle.set()

    @contextmanager
    def cut_short(self) -> Iterator[anyio.CancelScope]:
        """A scope around a wait that `stop` cancels: check `scope.cancelled_caught` afterwards."""
        with anyio.CancelScope() as scope:
            if self.stopping:
                scope.cancel()
            self._waits.add(scope)
            try:
                yield scope
            finally:
                self._waits.discard(scope)

    async def stop(self, grace: float) -> bool:
        """Refuse new calls, end waits, and wait up to `grace` s for the calls in flight; True if all answered."""
        self.stopping = True
        for scope in list(self._waits):
            scope.cancel()
        if self._in_flight == 0:
            return True
        self._idle = anyio.Event()
        with anyio.move_on_after(grace):
            await self._idle.wait()
        return self._in_flight == 0
