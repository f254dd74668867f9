"""Storage cost of one paid call: the charge reserved (budget checked) and the result recorded.

SQLite runs each statement inline on the event loop and moves to its worker thread only when another
process holds the lock; the figure beside it is what two thread hand-offs alone cost (a paid call's
two writes, each sent to a worker thread and back, as every ledger write was before). PostgreSQL
(a throwaway local cluster, Unix socket) is one round trip per statement through the async pool.
Sequential, and 10 callers at once on one event loop.

    python bench/storage_ops.py [--calls N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Row, print_rows, state_dir
from cutout_mcp.config import Settings
from cutout_mcp.core.storage import Storage, open_storage
from tests.pgserver import PgServer, find_bindir

BUDGET = 10**12


async def per_call(storage: Storage, calls: int, width: int) -> float:
    """Milliseconds of storage per paid call, with `width` callers at once."""

    async def caller(n: int) -> None:
        for i in range(n):
            charge = await storage.reserve("local", "edit", 4, BUDGET)
            await storage.record_edit(charge, i, "model")

    await caller(20)  # warm up
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(width):
            tg.start_soon(caller, calls // width)
    return 1000 * (time.perf_counter() - started) / calls


async def hand_offs(calls: int) -> float:
    """Milliseconds of two empty worker-thread round trips: the floor of a thread per write."""
    limiter = anyio.CapacityLimiter(1)
    started = time.perf_counter()
    for _ in range(calls):
        await anyio.to_thread.run_sync(int, limiter=limiter)
        await anyio.to_thread.run_sync(int, limiter=limiter)
    return 1000 * (time.perf_counter() - started) / calls


async def run(calls: int = 2000) -> list[Row]:
    rows = []
    floor = await hand_offs(calls)
    async with open_storage(Settings(state_dir=Path(state_dir()))) as sqlite:
        for width in (1, 10):
            value = await per_call(sqlite, calls, width)
            rows.append(
                Row(
                    "storage",
                    f"SQLite: reserve + record per paid call, {width} at once",
                    f"{value:.3f} ms",
                    floor=f"{floor:.3f} ms (two worker-thread hand-offs)",
                    target="< floor",
                    met=value < floor,
                )
            )
    bindir = find_bindir()
    if bindir is None:
        return rows
    server = PgServer(bindir)
    try:
        async with open_storage(Settings(database_url=server.new_database())) as postgres:
            for width in (1, 10):
                value = await per_call(postgres, calls, width)
                rows.append(
                    Row("storage", f"PostgreSQL: reserve + record per paid call, {width} at once", f"{value:.3f} ms")
                )
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    print_rows(anyio.run(run, parser.parse_args().calls))


if __name__ == "__main__":
    main()
