"""One server process's worth of storage traffic, for the multi-process tests (`test_concurrency.py`).

    python -m tests.storage_worker MODE STORE TASKS [ARG]

STORE is a postgresql:// URL or an SQLite state folder. The worker opens the storage, prints
`ready`, waits for a line on stdin (so every process starts at once), then runs TASKS concurrent
callers and prints one JSON line per outcome:

- `submit` (ARG = shared submit log): each caller asks the real paid path (`PaidCalls.call` with the
  dedupe guard) for one of `KEYS` identical video requests; the fake upstream appends the key to the
  log (O_APPEND, so lines from all processes interleave whole) and answers a fresh job id;
- `allowance` (ARG = shared submit log): each caller asks the real paid path for one paid call as one of
  `PRINCIPALS`, under `POLICY`, in this process's session; the fake upstream appends the principal to the
  log, and each outcome says who was granted or which limit refused;
- `budget` (ARG = budget): each caller reserves 5 credits once;
- `write`: reserves and records jobs one after another forever, printing each committed id.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import anyio

from cutout_mcp.clock import SystemClock
from cutout_mcp.config import Settings
from cutout_mcp.config.allowances import load_policy
from cutout_mcp.core.money.paid import Dedupe, PaidCalls
from cutout_mcp.core.storage import AllowanceExceededError, BudgetExceededError, Storage, open_storage

KEYS = 5
PRINCIPALS = ("alice", "ci-bot", "carol")
POLICY = """
[default]
credits = 23
period = "1h"

[principals.ci-bot]
credits = 1000
session_credits = 10

[principals.carol]
credits = 1000
paid_calls_per_minute = 3
"""
"""alice may spend 4 calls of 5 credits this hour; ci-bot 2 per session; carol 3 per minute."""
IMAGE = "https://img.example.com/cat.jpg"


def settings_for(store: str) -> Settings:
    if store.startswith("postgresql://"):
        return Settings(database_url=store)
    return Settings(state_dir=Path(store))


async def submit(storage: Storage, n: int, log: str) -> None:
    paid = PaidCalls(storage, None, SystemClock(), guard_lease=30)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    async def one(i: int) -> None:
        url = f"{IMAGE}?key={i % KEYS}"

        async def send() -> int:
            os.write(fd, f"{url}\n".encode())
            await anyio.sleep(0.01)  # the upstream's latency: widens the window a double submit needs
            return int.from_bytes(secrets.token_bytes(6), "big")

        async def find() -> int | None:
            job = await storage.find_active("local", url, None)
            return None if job is None else job.id

        async def record(charge: int, job_id: int) -> None:
            await storage.record_video_job(charge, job_id, "local", url, None, 5)

        got = await paid.call("local", "video", 5, send, record, dedupe=Dedupe((url, None), find))
        print(json.dumps({"url": url, "job": got.value, "credits": got.credits}), flush=True)

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    os.close(fd)


async def allowance(storage: Storage, n: int, log: str) -> None:
    # a file of this process's own: another process rewriting a shared one could be read half-written
    policy_file = Path(log).with_suffix(f".{os.getpid()}.toml")
    policy_file.write_text(POLICY)
    policy = load_policy(Settings(allowances_file=policy_file))
    paid = PaidCalls(storage, None, SystemClock(), policy=policy)
    session = f"process-{os.getpid()}"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    async def one(i: int) -> None:
        who = PRINCIPALS[i % len(PRINCIPALS)]

        async def send() -> int:
            os.write(fd, f"{who}\n".encode())
            return i

        async def record(charge: int, edit_id: int) -> None:
            await storage.record_edit(charge, edit_id, "gpt-image-1")

        try:
            await paid.call(who, "edit", 5, send, record, session=session)
            print(json.dumps({"who": who, "granted": True}), flush=True)
        except AllowanceExceededError as exc:
            print(json.dumps({"who": who, "granted": False, "limit": exc.limit}), flush=True)

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    os.close(fd)


async def budget(storage: Storage, n: int, limit: int) -> None:
    async def one() -> None:
        try:
            await storage.reserve("local", "video", 5, limit)
            print(json.dumps({"granted": True}), flush=True)
        except BudgetExceededError:
            print(json.dumps({"granted": False}), flush=True)

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)


async def write(storage: Storage) -> None:
    job_id = 0
    while True:
        job_id += 1
        charge = await storage.reserve("local", "video", 5, None)
        await storage.record_video_job(charge, job_id, "local", IMAGE, None, 5)
        print(job_id, flush=True)


async def main(mode: str, store: str, tasks: int, arg: str) -> None:
    async with open_storage(settings_for(store)) as storage:
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        if mode == "submit":
            await submit(storage, tasks, arg)
        elif mode == "allowance":
            await allowance(storage, tasks, arg)
        elif mode == "budget":
            await budget(storage, tasks, int(arg))
        else:
            await write(storage)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "")
