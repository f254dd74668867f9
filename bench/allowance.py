"""Cost of the allowance check per paid call, beside the same call with no allowance set (the floor).

Three figures per backend (SQLite in a fresh state folder; PostgreSQL in a throwaway local cluster):

- storage: `reserve` + `record_edit` per paid call, with an allowance (credits per month), a session
  cap and a rate all set, against none set, the median of interleaved rounds; the checks move the
  caller's and the session's counters in the reserving transaction (the window's counter is made from
  the charges already in it on its first use), so the figure is taken on a window empty at the start and
  again with `--history` charges of the caller already in this month's window (a busy caller late in the
  month): it should not grow with them;
- core: `edit_image` through the core (plan, paid path, record, result; pre-flight and preview off,
  cutout.pro answered at once by an in-process `httpx.MockTransport`), 10 calls in flight, calls per
  second with the three limits set against none, the median of interleaved rounds. Target: within 5%.
  Beside it the CPU each call took (this process, and for PostgreSQL the server processes serving the
  benchmark's database, read from /proc): on a shared machine it moves far less than the time does.
  (cutout.pro itself takes seconds per edit, so behind it the same milliseconds weigh far less.)

Time runs on a clock that moves one second at each reading (a paid call reads it a few times), so a
realistic rate limit (60 paid calls a minute) is approached but never reached, and each session holds 20
calls, as an agent's run might: the rows the checks count stay those a busy real caller has, rather than
growing with the benchmark's own pace.

    python bench/allowance.py [--calls N] [--history N]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Row, median, print_rows, state_dir
from cutout_mcp.config import Settings
from cutout_mcp.config.allowances import AllowancePolicy, Limits
from cutout_mcp.core import edits
from cutout_mcp.core.context import open_context
from cutout_mcp.core.storage import Storage, open_storage
from cutout_mcp.core.storage.limits import call_limits
from tests.pgserver import PgServer, find_bindir

MONTH_START = datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp()
PER_MINUTE = 60
PER_SESSION = 20
LIMITS = {"allowance": f"{10**12}/month", "session_credits": 10**12, "paid_calls_per_minute": PER_MINUTE}
POLICY = AllowancePolicy(Limits(credits=10**12, session_credits=10**12, paid_calls_per_minute=PER_MINUTE))
BUDGET = 10**12
ROUNDS = 5
IMAGE = "https://img.example.com/cat.jpg"


class StepClock:
    """A day in March 2026 on which each reading of the clock is one second later than the last."""

    def __init__(self) -> None:
        self.time = MONTH_START + 20 * 86_400

    def now(self) -> float:
        self.time += 1.0
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.time += seconds
        await anyio.lowlevel.checkpoint()


async def storage_per_call(storage: Storage, clock: StepClock, calls: int, limited: bool) -> float:
    """Milliseconds of storage per paid call (one caller, sessions of `PER_SESSION` calls)."""
    started = time.perf_counter()
    for i in range(calls):
        limits = call_limits(POLICY, "alice", f"session-{i // PER_SESSION}", clock.now()) if limited else None
        charge = await storage.reserve("alice", "edit", 4, BUDGET, None, limits)
        await storage.record_edit(charge, i, "gpt-image-1")
    return 1000 * (time.perf_counter() - started) / calls


async def seed_history(storage: Storage, clock: StepClock, count: int) -> None:
    """`count` earlier charges of the caller, spread over this month's window before now."""
    now = clock.now()
    spread = [MONTH_START + (now - MONTH_START) * i / count for i in range(count)]
    rows = [("alice", "alice", "edit", 7, "gpt-image-1", 4, at) for at in spread]
    columns = "principal, caller, kind, ref_id, detail, credits, created_at"
    sql = f"INSERT INTO charges ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    db: Any = getattr(storage, "_inline", None)
    if db is not None:  # SQLite: the storage's own connection
        db.execute("BEGIN IMMEDIATE")
        db.executemany(sql, rows)
        db.execute("COMMIT")
        return
    async with storage._transaction() as cur:  # type: ignore[attr-defined]
        await cur.executemany(sql.replace("?", "%s"), rows)


def edit_answers(request: httpx.Request) -> httpx.Response:
    """cutout.pro's Image Edit answer, at once."""
    data = {"id": next(EDIT_IDS), "imageUrl": "https://cdn.example.com/edit.jpg", "model": "gpt-image-1", "status": 1}
    return httpx.Response(200, json={"code": 0, "data": data, "msg": None, "time": 0})


EDIT_IDS = itertools.count(10**14)


async def core_rate(settings: Settings, calls: int, width: int = 10) -> tuple[float, float]:
    """Edits per second through the core, `width` in flight, each caller in sessions of `PER_SESSION`; and
    the CPU milliseconds each took: this process's, plus the database server processes serving it."""
    async with open_context(settings, http_transport=httpx.MockTransport(edit_answers), clock=StepClock()) as app:

        async def caller(name: str, n: int) -> None:
            for i in range(n):
                session = f"{name}-{i // PER_SESSION}"
                plan = await edits.plan_edit(app, name, f"make it blue {i}", [IMAGE], "gpt-image-1", session=session)
                await edits.edit_image(app, name, plan)

        await caller("warm-up", 20)
        server_before = server_cpu(settings)
        cpu, started = time.process_time(), time.perf_counter()
        async with anyio.create_task_group() as tg:
            for w in range(width):
                tg.start_soon(caller, f"caller-{w}", calls // width)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        server = sum(ns - server_before.get(pid, 0) for pid, ns in server_cpu(settings).items()) / 1e9
        return calls / elapsed, 1000 * (cpu + server) / calls


def server_cpu(settings: Settings) -> dict[int, int]:
    """Nanoseconds of CPU each PostgreSQL server process serving the benchmark's database has used (none for
    SQLite, which runs in this process). Read from /proc, so the server must run on this machine."""
    if settings.database_url is None:
        return {}
    import psycopg

    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    used: dict[int, int] = {}
    for (pid,) in rows:
        try:
            used[int(pid)] = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except OSError:  # ended meanwhile
            continue
    return used


def within(value: float, floor: float, target: float = 0.05) -> tuple[str, bool]:
    change = value / floor - 1
    return f"{change:+.1%}", change <= target


async def backend_rows(name: str, make: Callable[[], Settings], calls: int, history: int) -> list[Row]:
    """The figures of one backend; `make` gives settings naming a new, empty ledger on it."""
    rows: list[Row] = []
    for label, seeded in (("window empty at the start", 0), (f"{history} earlier charges in the window", history)):
        figures: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(ROUNDS):  # interleaved, each on a new ledger, so a busy moment of the machine falls on both
            for limited in (False, True):
                clock = StepClock()
                async with open_storage(make(), clock) as storage:  # type: ignore[arg-type]
                    if seeded:
                        await seed_history(storage, clock, seeded)
                    await storage_per_call(storage, clock, 50, limited)  # warm up
                    figures[limited].append(await storage_per_call(storage, clock, calls, limited))
        plain, limited_ms = median(figures[False]), median(figures[True])
        change, _ = within(limited_ms, plain)
        rows.append(
            Row(
                "allowance",
                f"{name}: reserve + record per paid call, limits set, {label} (median of {ROUNDS})",
                f"{limited_ms:.3f} ms ({change})",
                floor=f"{plain:.3f} ms (no limits)",
            )
        )
    rates: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(ROUNDS):  # interleaved, so a busy moment of the machine falls on both
        for limited in (False, True):
            rate, ms = await core_rate(make().model_copy(update=LIMITS if limited else {}), calls)
            rates[limited].append(rate)
            cpu[limited].append(ms)
    plain, limited_rate = median(rates[False]), median(rates[True])
    change, met = within(plain, limited_rate)
    rows.append(
        Row(
            "allowance",
            f"{name}: edit_image through the core, 10 in flight, limits set (median of {ROUNDS})",
            f"{limited_rate:.0f} calls/s ({change} time per call)",
            floor=f"{plain:.0f} calls/s (no limits)",
            target="≤ +5%",
            met=met,
        )
    )
    plain_cpu, limited_cpu = median(cpu[False]), median(cpu[True])
    change, met = within(limited_cpu, plain_cpu)
    where = "this process" if name == "SQLite" else "this process and the database's server processes"
    rows.append(
        Row(
            "allowance",
            f"{name}: CPU per edit_image call through the core ({where}), limits set (median of {ROUNDS})",
            f"{limited_cpu:.3f} ms ({change})",
            floor=f"{plain_cpu:.3f} ms (no limits)",
            target="≤ +5%",
            met=met,
        )
    )
    return rows


async def run(calls: int = 2000, history: int = 10_000) -> list[Row]:
    base: dict[str, Any] = {"api_key": "bench-key", "base_url": "https://api.cutout.test", "preflight": False}
    base["preview"] = False
    rows = await backend_rows("SQLite", lambda: Settings(**base, state_dir=Path(state_dir())), calls, history)
    bindir = find_bindir()
    if bindir is None:
        return rows
    server = PgServer(bindir)
    try:
        make = lambda: Settings(**base, state_dir=Path(state_dir()), database_url=server.new_database())  # noqa: E731
        rows += await backend_rows("PostgreSQL", make, calls, history)
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--history", type=int, default=10_000)
    args = parser.parse_args()
    print_rows(anyio.run(run, args.calls, args.history))


if __name__ == "__main__":
    main()
