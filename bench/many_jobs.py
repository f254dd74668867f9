"""Many jobs: 500 concurrent `generate_video` waits on one streamable-HTTP cutout-mcp.

A sandbox with short jobs runs in this process; `cutout-mcp --transport
streamable-http` is spawned against it. Five official clients (the default
2026-07-28 mode: each call is its own POST, no per-session state) each make
100 calls at once, with distinct prompts (so the ledger does not reuse an
identical unfinished job) and `wait_seconds=60`, longer than any job here.
Pre-flight is off (it would fetch the sample image 500 times; this measures
the waits). Reported: that all finished, the server's peak resident memory
(VmHWM) and CPU seconds from /proc, upstream requests per job from the
sandbox's counters, and each waiter's delay from its job's end (sandbox time)
to its answer, and how much later that answer came than the read PollPolicy
alone would have made (max versus median: no waiter is starved).

A second server holds as many `get_video_result` waits on one running job (no paid submits), to
show how much of the peak is the burst of submits rather than the waiting.

The polling policy's own count replays `jobs.PollPolicy` alone over each
job's timeline as the sandbox reports it (reads from the submit on, the next
read `next_interval` later, until a read shows it finished), plus the one
submit; the server must not need more upstream requests than that.

    python bench/many_jobs.py [--jobs N] [--clients K]
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

from bench._common import (
    CUTOUT_MCP,
    FLOOR_SERVER,
    PYTHON,
    WAITS_ONLY,
    Row,
    cpu_seconds,
    free_port,
    median,
    peak_rss_mb,
    print_rows,
    server_env,
    wait_for_port,
)
from cutout_mcp.core.jobs.pace import Pace, PollPolicy
from cutout_mcp.core.results import VideoJob
from cutout_mcp.sandbox import ManualClock, Sandbox, SandboxConfig, run_sandbox
from cutout_mcp.upstream.models import UpstreamVideoJob

GENERATE = "/api/v2/imageToVideo/generate"
RESULT = "/api/v2/imageToVideo/getResult"
TARGET_RSS_RATIO = 1.1
"""Peak memory within 1.1x the floor server holding as many calls."""
HOLD_SECONDS = 5.0
TIME_LIMIT = 240.0
STARVED_SECONDS = 5.0
"""Slack over the policy's longest poll interval before a waiter's answer counts as starved."""


def policy_reads(sandbox: Sandbox, policy: PollPolicy) -> dict[int, tuple[int, float]]:
    """Per job, (getResult reads, time of the read that sees it finished) under PollPolicy alone."""
    state = sandbox.state
    real_clock = state.clock
    reads: dict[int, tuple[int, float]] = {}
    try:
        for job in state.jobs.values():
            at, count, pace = job.created_at, 0, Pace()
            while count < 1000:
                state.clock = ManualClock(at)
                p = state.progress(job)
                count += 1
                seen = VideoJob.from_upstream(
                    UpstreamVideoJob.model_validate(
                        {"id": job.id, "status": p.status, "percentage": p.percentage, "waitNumber": p.wait_number}
                    )
                )
                if seen.finished:
                    break
                pace.observe(seen, at)
                at += policy.next_interval(seen, pace)
            reads[job.id] = (count, at)
    finally:
        state.clock = real_clock
    return reads


async def floor_usage(jobs: int, clients: int, hold: float = HOLD_SECONDS) -> tuple[float, float]:
    """(peak RSS MB, CPU s) of the floor server holding `jobs` calls open for `hold` seconds each."""
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped in finally
        [PYTHON, FLOOR_SERVER, "--transport", "streamable-http", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_for_port(port, process)

        async def one_client() -> None:
            async with Client(f"http://127.0.0.1:{port}/mcp") as client, anyio.create_task_group() as tg:
                for i in range(jobs // clients):
                    tg.start_soon(client.call_tool, "echo", {"text": str(i), "seconds": hold})

        with anyio.fail_after(TIME_LIMIT):
            async with anyio.create_task_group() as tg:
                for _ in range(clients):
                    tg.start_soon(one_client)
        return peak_rss_mb(process.pid), cpu_seconds(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


async def waits_only(jobs: int, clients: int) -> float:
    """Peak RSS of cutout-mcp holding `jobs` get_video_result waits on one running job (no submits)."""
    config = SandboxConfig(queue_seconds=0.5, queue_depth=0, job_seconds=60.0, video_format="gif", fetch_remote=False)
    async with run_sandbox(config) as sandbox:
        port = free_port()
        env = server_env(sandbox.base_url, sandbox.api_key, **WAITS_ONLY)
        process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped in finally
            [CUTOUT_MCP, "--transport", "streamable-http", "--port", str(port)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
        )
        try:
            await wait_for_port(port, process)
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                arguments = {"image_url": sandbox.url("/samples/photo.jpg"), "wait_seconds": 0}
                started = await client.call_tool("generate_video", arguments)
            job_id = (started.structured_content or {})["id"]

            async def one_client() -> None:
                async with Client(f"http://127.0.0.1:{port}/mcp") as client, anyio.create_task_group() as tg:
                    for _ in range(jobs // clients):
                        tg.start_soon(
                            client.call_tool, "get_video_result", {"id": job_id, "wait_seconds": HOLD_SECONDS}
                        )

            with anyio.fail_after(TIME_LIMIT):
                async with anyio.create_task_group() as tg:
                    for _ in range(clients):
                        tg.start_soon(one_client)
            return peak_rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)


async def run(jobs: int = 500, clients: int = 5) -> list[Row]:
    floor_rss, floor_cpu = await floor_usage(jobs, clients)
    waits_rss = await waits_only(jobs, clients)
    config = SandboxConfig(queue_seconds=1.0, queue_depth=0, job_seconds=3.0, video_format="gif", fetch_remote=False)
    async with run_sandbox(config) as sandbox:
        port = free_port()
        env = server_env(sandbox.base_url, sandbox.api_key, **WAITS_ONLY)
        process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped in finally
            [CUTOUT_MCP, "--transport", "streamable-http", "--port", str(port)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
        )
        answered: dict[int, float] = {}
        errors: list[str] = []
        try:
            await wait_for_port(port, process)
            image = sandbox.url("/samples/photo.jpg")
            per_client = jobs // clients
            started = time.perf_counter()
            with anyio.fail_after(TIME_LIMIT):
                async with anyio.create_task_group() as tg:
                    for c in range(clients):
                        tg.start_soon(one_client, port, c, per_client, image, sandbox, answered, errors)
            wall = time.perf_counter() - started
            rss, cpu = peak_rss_mb(process.pid), cpu_seconds(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
        state = sandbox.state
        submitted = state.requests[GENERATE]
        reads = state.requests[RESULT]
        finished = sum(1 for job_id in answered if job_id in state.jobs)
        delays = [answered[j] - state.jobs[j].end for j in answered if j in state.jobs]
        own = policy_reads(sandbox, PollPolicy())
        own_per_job = 1 + sum(count for count, _ in own.values()) / max(1, len(own))
        late = [answered[j] - own[j][1] for j in answered if j in own]
    total = per_client * clients
    per_job = (submitted + reads) / max(1, submitted)
    med, worst = median(delays), max(delays)
    late_med, late_max = median(late), max(late)
    bound = PollPolicy().max_interval + STARVED_SECONDS
    return [
        Row(
            "many jobs",
            f"{total} concurrent generate_video waits ({clients} clients x {per_client}) finished",
            f"{finished}/{total} in {wall:.1f} s" + (f"; {len(errors)} errors: {errors[0][:300]}" if errors else ""),
            target="all",
            met=finished == total and not errors,
        ),
        Row(
            "many jobs",
            f"server peak RSS (VmHWM), {total} generate_video calls (paid submits, then waits)",
            f"{rss:.1f} MB ({rss / floor_rss:.2f}x)",
            floor=f"{floor_rss:.1f} MB (floor server, {total} calls held open)",
            target=f"<= {TARGET_RSS_RATIO}x floor",
            met=rss <= TARGET_RSS_RATIO * floor_rss,
        ),
        Row(
            "many jobs",
            f"server peak RSS (VmHWM), {total} get_video_result waits on a running job (no submits)",
            f"{waits_rss:.1f} MB ({waits_rss / floor_rss:.2f}x)",
            floor=f"{floor_rss:.1f} MB (floor server, {total} calls held open)",
        ),
        Row(
            "many jobs",
            "server CPU seconds (user+sys, whole run)",
            f"{cpu:.1f} s ({1000 * cpu / total:.1f} ms/job)",
            floor=f"{floor_cpu:.1f} s (floor server)",
        ),
        Row(
            "many jobs",
            "upstream requests per job (submit + reads)",
            f"{per_job:.2f}",
            floor=f"{own_per_job:.2f} (PollPolicy alone)",
            target="<= policy's own count",
            met=per_job <= own_per_job + 1e-9,
        ),
        Row(
            "many jobs",
            "job end -> answer delay, median / max",
            f"{med:.2f} s / {worst:.2f} s",
            floor=f"<= {bound - STARVED_SECONDS:.0f} s (PollPolicy's longest interval)",
            target=f"max < {bound:.0f} s (no starved waiter)",
            met=worst < bound,
        ),
        Row(
            "many jobs",
            "answer time minus PollPolicy replay's (first read at submit), median / max",
            f"{late_med:.2f} s / {late_max:.2f} s",
        ),
    ]


async def one_client(
    port: int, index: int, calls: int, image: str, sandbox: Sandbox, answered: dict[int, float], errors: list[str]
) -> None:
    async with Client(f"http://127.0.0.1:{port}/mcp") as client:

        async def one(i: int) -> None:
            arguments = {"image_url": image, "prompt": f"bench {index}-{i}", "wait_seconds": 60}
            result = await client.call_tool("generate_video", arguments)
            data = result.structured_content or {}
            if result.is_error or data.get("status") != "succeeded":
                errors.append(str(result.content)[:200])
                return
            answered[int(data["id"])] = sandbox.state.clock.now()

        async with anyio.create_task_group() as tg:
            for i in range(calls):
                tg.start_soon(one, i)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--clients", type=int, default=5)
    args = parser.parse_args()
    print_rows(anyio.run(run, args.jobs, args.clients))


if __name__ == "__main__":
    main()
