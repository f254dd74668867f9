"""After the faults: bring everything back, let every job end, then look at every job id and task from
every replica, ask each replica whether it is ready, read the ledger and the sandbox's record, stop the
replicas and check that nothing was left running or connected."""

from __future__ import annotations

import hashlib
import hmac
import signal
import time
from typing import Any

import anyio
import httpx
import psycopg
from psycopg.rows import dict_row

from bench._common import child_pids
from bench.soaklib.cluster import Cluster
from bench.soaklib.connect import connect
from bench.soaklib.history import History, Sighting
from tests.tasks_client import get_task

SETTLE_SECONDS = 90.0
"""Bound on waiting for the last jobs and tasks to end."""
POOL_MAX = 10
"""Connections one replica's pool may hold."""


async def restore(cluster: Cluster) -> None:
    """Every replica running, no fault pending on the sandbox."""
    await cluster.clear_sandbox_faults()
    for index, process in enumerate(cluster.processes):
        if process is None or process.poll() is not None:
            await cluster.bring_up(index)


async def sight_jobs(cluster: Cluster, history: History) -> None:
    """Each job id a client was given, read by its caller on every replica, waiting for it to end."""
    wanted = {(op.principal, op.job_id) for op in history.ops if op.job_id is not None and op.outcome == "ok"}
    for replica, port in enumerate(cluster.ports):
        for principal in ("alice", "bob", "carol"):
            ids = sorted(job for owner, job in wanted if owner == principal)
            if not ids:
                continue
            async with connect([port], principal) as client:
                for job_id in ids:
                    sighting = Sighting(principal, str(job_id), replica, None)
                    try:
                        with anyio.fail_after(60):
                            result = await client.call_tool("get_video_result", {"id": job_id, "wait_seconds": 30})
                        sighting.status = (result.structured_content or {}).get("status")
                        if result.is_error:
                            sighting.error = " ".join(getattr(c, "text", "") for c in result.content)[:200]
                    except Exception as exc:
                        sighting.error = repr(exc)[:200]
                    history.jobs_seen.append(sighting)


async def sight_tasks(cluster: Cluster, history: History) -> None:
    """Each task handle, read on every replica until it is final (bounded)."""
    wanted = [(op.principal, op.task_id) for op in history.ops if op.task_id is not None]
    deadline = time.time() + SETTLE_SECONDS
    for replica, port in enumerate(cluster.ports):
        for principal in ("alice", "bob", "carol"):
            mine = [task for owner, task in wanted if owner == principal]
            if not mine:
                continue
            async with connect([port], principal) as client:
                for task_id in mine:
                    history.tasks_seen.append(await _final_task(client, principal, task_id, replica, deadline))


async def _final_task(client: Any, principal: str, task_id: str, replica: int, deadline: float) -> Sighting:
    sighting = Sighting(principal, task_id, replica, None)
    while True:
        try:
            task = await get_task(client.session, task_id)
            sighting.status, sighting.error = task.status, None
        except Exception as exc:
            sighting.error = repr(exc)[:200]
        if sighting.status in ("completed", "failed", "cancelled") or time.time() > deadline:
            return sighting
        await anyio.sleep(0.5)


async def sweep_and_ready(cluster: Cluster, history: History) -> None:
    """list_video_jobs on every replica (it also sweeps staged objects), then each replica's readiness:
    /readyz where the server has it, else an answer to tools/list."""
    async with httpx.AsyncClient(timeout=10) as http:
        for replica, port in enumerate(cluster.ports):
            try:
                for principal in ("alice", "bob", "carol"):
                    async with connect([port], principal) as client:
                        await client.call_tool("list_video_jobs", {})
                        tools = await client.list_tools()
                ready = await http.get(f"http://127.0.0.1:{port}/readyz")
                if ready.status_code == 404:  # no readiness endpoint in this version: tools/list answered
                    history.ready[replica] = "ok" if tools.tools else "tools/list was empty"
                else:
                    history.ready[replica] = "ok" if ready.status_code == 200 else f"/readyz {ready.status_code}"
            except Exception as exc:
                history.ready[replica] = repr(exc)[:200]


async def connections(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def read_ledger(url: str) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        cur = await conn.execute(
            "SELECT seq, principal, kind, ref_id, credits, created_at, session_id FROM charges ORDER BY seq"
        )
        return list(await cur.fetchall())


async def staged_contents(url: str, pictures: dict[str, bytes]) -> dict[str, str]:
    """Which staged key holds which picture: the servers name content by an HMAC under their shared secret."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT value FROM secrets WHERE name = 'staging-content-key'")
        row = await cur.fetchone()
    if row is None:
        return {}
    secret = bytes(row[0])
    found = {}
    for name, data in pictures.items():
        digest = hmac.new(secret, data, hashlib.sha256).hexdigest()
        found[f"staged/{digest}.jpg"] = name
    return found


async def wind_down(cluster: Cluster, history: History, pictures: dict[str, bytes]) -> None:
    """Let every sandbox job end, check every job and task everywhere, read both records, stop the replicas."""
    for _ in range(int(SETTLE_SECONDS / 0.5)):
        if not await _jobs_running(cluster):
            break
        await anyio.sleep(0.5)
    await sight_jobs(cluster, history)
    await sight_tasks(cluster, history)
    await sweep_and_ready(cluster, history)
    open_now = await connections(cluster.database_url)
    if open_now > POOL_MAX * len(cluster.ports):
        history.leaks.append(
            f"{open_now} database connections open, more than {len(cluster.ports)} pools of {POOL_MAX}"
        )
    history.sandbox = await cluster.sandbox_stats()
    history.charges = await read_ledger(cluster.database_url)
    history.staged_contents = await staged_contents(cluster.database_url, pictures)
    for index in range(len(cluster.ports)):
        code = await cluster.stop_replica(index, signal.SIGTERM)
        if code != 0:
            history.leaks.append(f"replica {index} did not exit cleanly on SIGTERM (exit code {code})")
    for _ in range(50):
        left = await connections(cluster.database_url)
        if left == 0:
            break
        await anyio.sleep(0.2)
    if left:
        history.leaks.append(f"{left} database connection(s) still open after every replica stopped")


async def _jobs_running(cluster: Cluster) -> bool:
    jobs: list[dict[str, Any]] = (await cluster.sandbox_stats())["jobs"]  # type: ignore[assignment]
    return any(job["ends_at"] > time.time() for job in jobs)


def leftover_processes(cluster: Cluster) -> list[str]:
    """Children of the soak still running after `Cluster.stop()`."""
    return [f"process {pid} still running" for pid in child_pids() if pid in cluster.started_pids]
