"""Replicas: 500 concurrent `generate_video` waits spread over 3 cutout-mcp replicas on one PostgreSQL.

A throwaway PostgreSQL cluster (the tests' `PgServer`: initdb in a temp dir, Unix socket only) and a
sandbox with short jobs run beside three `cutout-mcp --transport streamable-http` processes sharing
`CUTOUT_DATABASE_URL`. Six official clients, two per replica, make the calls at once, with distinct
prompts and `wait_seconds=60` (as in `many_jobs.py`, pre-flight off). Reported: that all finished,
each replica's peak resident memory (VmHWM), upstream requests per job against the polling
policy's own count, and the worst case of per-process polling: 50 jobs each waited on by all three
replicas at once, where every replica polls every job (reads per job against one replica's).

    python bench/replicas.py [--jobs N] [--replicas R]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CUTOUT_MCP, WAITS_ONLY, Row, free_port, peak_rss_mb, print_rows, server_env, wait_for_port
from bench.many_jobs import RESULT, TIME_LIMIT, one_client, policy_reads
from cutout_mcp.core.jobs.pace import PollPolicy
from cutout_mcp.sandbox import Sandbox, SandboxConfig, run_sandbox
from tests.pgserver import PgServer, find_bindir

TARGET_RSS_MB = 100.0
"""Peak memory each replica should stay under while holding its share of the 500 waits."""

GENERATE = "/api/v2/imageToVideo/generate"
SHARED_JOBS = 50


async def run(jobs: int = 500, replicas: int = 3, clients_per_replica: int = 2) -> list[Row]:
    bindir = find_bindir()
    if bindir is None:
        return [Row("replicas", "skipped", "PostgreSQL binaries not found (install the postgresql package)")]
    database = PgServer(bindir)
    try:
        return await _run(database.new_database(), jobs, replicas, clients_per_replica)
    finally:
        database.stop()


async def _run(url: str, jobs: int, count: int, per_replica: int) -> list[Row]:
    config = SandboxConfig(queue_seconds=1.0, queue_depth=0, job_seconds=3.0, video_format="gif", fetch_remote=False)
    async with run_sandbox(config) as sandbox:
        ports = [free_port() for _ in range(count)]
        env = server_env(sandbox.base_url, sandbox.api_key, **WAITS_ONLY, CUTOUT_DATABASE_URL=url)
        processes = [
            subprocess.Popen(  # noqa: ASYNC220 - long-lived children, stopped in finally
                [CUTOUT_MCP, "--transport", "streamable-http", "--port", str(port)],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
            )
            for port in ports
        ]
        answered: dict[int, float] = {}
        errors: list[str] = []
        try:
            for port, process in zip(ports, processes, strict=True):
                await wait_for_port(port, process)
            image = sandbox.url("/samples/photo.jpg")
            clients = count * per_replica
            started = time.perf_counter()
            with anyio.fail_after(TIME_LIMIT):
                async with anyio.create_task_group() as tg:
                    for c in range(clients):
                        calls = jobs // clients + (1 if c < jobs % clients else 0)
                        tg.start_soon(one_client, ports[c % count], c, calls, image, sandbox, answered, errors)
            wall = time.perf_counter() - started
            state = sandbox.state
            submitted, reads = state.requests[GENERATE], state.requests[RESULT]
            own = policy_reads(sandbox, PollPolicy())
            own_per_job = 1 + sum(n for n, _ in own.values()) / max(1, len(own))
            shared_reads, shared_own = await _shared_waits(ports, sandbox, image)
            rss = [peak_rss_mb(process.pid) for process in processes]
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=30)
    total = jobs
    finished = sum(1 for job_id in answered if job_id in sandbox.state.jobs)
    per_job = (submitted + reads) / max(1, submitted)
    return [
        Row(
            "replicas",
            f"{total} concurrent generate_video waits over {count} replicas on PostgreSQL finished",
            f"{finished}/{total} in {wall:.1f} s" + (f"; {len(errors)} errors: {errors[0][:300]}" if errors else ""),
            target="all",
            met=finished == total and not errors,
        ),
        Row(
            "replicas",
            "peak RSS (VmHWM) per replica",
            " / ".join(f"{mb:.1f} MB" for mb in rss),
            target=f"< {TARGET_RSS_MB:.0f} MB each",
            met=max(rss) < TARGET_RSS_MB,
        ),
        Row(
            "replicas",
            "upstream requests per job (submit + reads)",
            f"{per_job:.2f}",
            floor=f"{own_per_job:.2f} (PollPolicy alone)",
            target="<= policy's own count",
            met=per_job <= own_per_job + 1e-9,
        ),
        Row(
            "replicas",
            f"reads per job, {SHARED_JOBS} jobs each waited on by all {count} replicas (per-process polling)",
            f"{shared_reads:.2f}",
            floor=f"{shared_own:.2f} (PollPolicy alone, one process)",
            target=f"<= {count}x policy",
            met=shared_reads <= count * shared_own + 1e-9,
        ),
    ]


async def _shared_waits(ports: list[int], sandbox: Sandbox, image: str) -> tuple[float, float]:
    """Submit SHARED_JOBS jobs through the first replica, then wait on each from every replica at once."""
    state = sandbox.state
    async with Client(f"http://127.0.0.1:{ports[0]}/mcp") as first:
        ids = []
        for n in range(SHARED_JOBS):
            arguments = {"image_url": image, "prompt": f"shared {n}", "wait_seconds": 0}
            ids.append(int((await first.call_tool("generate_video", arguments)).structured_content["id"]))
    before = state.requests[RESULT]

    async def wait_all(port: int) -> None:
        async with Client(f"http://127.0.0.1:{port}/mcp") as client, anyio.create_task_group() as tg:
            for job_id in ids:
                tg.start_soon(client.call_tool, "get_video_result", {"id": job_id, "wait_seconds": 60})

    with anyio.fail_after(TIME_LIMIT):
        async with anyio.create_task_group() as tg:
            for port in ports:
                tg.start_soon(wait_all, port)
    own = policy_reads(sandbox, PollPolicy())
    mine = [own[job_id][0] for job_id in ids if job_id in own]
    reads = (state.requests[RESULT] - before) / len(ids)
    return reads, sum(mine) / max(1, len(mine))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--replicas", type=int, default=3)
    args = parser.parse_args()
    print_rows(anyio.run(run, args.jobs, args.replicas))


if __name__ == "__main__":
    main()
