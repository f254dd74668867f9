"""Carrying out the fault schedule against the running cluster, and logging each fault as it happens."""

from __future__ import annotations

import signal
import time

import anyio

from bench.soaklib.cluster import Cluster
from bench.soaklib.history import FaultEvent
from bench.soaklib.schedule import SANDBOX_KINDS, Planned


class Injector:
    def __init__(self, cluster: Cluster, log: list[FaultEvent]) -> None:
        self.cluster = cluster
        self.log = log
        self.down: set[int] = set()
        self.output_down = False

    async def run(self, plan: list[Planned], started: float) -> None:
        """Each fault at its time; stopped things come back after their pause, in the background."""
        async with anyio.create_task_group() as tg:
            for planned in plan:
                await anyio.sleep(max(0.0, started + planned.at - time.time()))
                if planned.kind in SANDBOX_KINDS:
                    assert planned.fault is not None
                    await self.cluster.sandbox_fault(planned.fault)
                    self.log.append(FaultEvent(time.time(), planned.kind, repr(planned.fault)))
                else:
                    tg.start_soon(self.outage, planned)

    async def outage(self, planned: Planned) -> None:
        """One outage; one that cannot be caused is logged as skipped, never ends the run."""
        try:
            if planned.kind in ("kill9", "sigterm"):
                await self.stop_replica(planned)
            elif planned.kind == "postgres_restart":
                await self.restart_postgres(planned)
            else:
                await self.unwritable_output(planned)
        except OSError as exc:
            self.log.append(FaultEvent(time.time(), planned.kind, f"could not be caused: {exc}", skipped=True))

    async def stop_replica(self, planned: Planned) -> None:
        index = planned.replica
        if index in self.down or len(self.down) + 1 >= len(self.cluster.ports):
            self.log.append(FaultEvent(time.time(), planned.kind, f"replica {index}", skipped=True))
            return
        self.down.add(index)
        event = FaultEvent(time.time(), planned.kind, f"replica {index}, down {planned.pause} s")
        self.log.append(event)
        sig = signal.SIGKILL if planned.kind == "kill9" else signal.SIGTERM
        code = await self.cluster.stop_replica(index, sig)
        if sig == signal.SIGTERM and code != 0:
            event.detail += f"; exit code {code} after SIGTERM"
        try:
            await anyio.sleep(planned.pause)
            await self.cluster.bring_up(index)
        finally:
            event.end = time.time()
            self.down.discard(index)

    async def restart_postgres(self, planned: Planned) -> None:
        pg = self.cluster.pg
        assert pg is not None
        event = FaultEvent(time.time(), planned.kind, f"down {planned.pause} s")
        self.log.append(event)
        try:
            await anyio.to_thread.run_sync(pg.halt)
            await anyio.sleep(planned.pause)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(pg.resume)
            event.end = time.time()

    async def unwritable_output(self, planned: Planned) -> None:
        """The output folder replaced by a file (root writes through any mode bits), then put back."""
        folder = self.cluster.output_dir
        away = folder.with_name("output.away")
        if self.output_down:
            self.log.append(FaultEvent(time.time(), planned.kind, "already unwritable", skipped=True))
            return
        self.output_down = True
        event = FaultEvent(time.time(), planned.kind, f"for {planned.pause} s")
        self.log.append(event)
        folder.rename(away)
        folder.write_bytes(b"not a folder\n")
        try:
            await anyio.sleep(planned.pause)
        finally:
            folder.unlink()
            away.rename(folder)
            event.end = time.time()
            self.output_down = False
