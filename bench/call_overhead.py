"""Call overhead: `edit_image` through MCP versus the same upstream request made directly with httpx.

A sandbox runs in this process on 127.0.0.1 (edits answer at once). The MCP
path is the installed `cutout-mcp`, spawned over stdio and driven by the
official client; the direct path is one `httpx.AsyncClient` POSTing the same
body to `/api/v1/image/edit`. Each path runs sequentially (latency) and at
concurrency 10 (throughput). Pre-flight image checks (CUTOUT_PREFLIGHT) and
the inline preview (CUTOUT_EDIT_PREVIEW) are off for the like-for-like
figures, since each adds a fetch of an image that the direct request does not
make; a second MCP run with both at their defaults (on) shows what they cost.

    python bench/call_overhead.py [--calls N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client, StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CUTOUT_MCP, Row, median, ms, print_rows, quantile, server_env
from cutout_mcp import catalog
from cutout_mcp.sandbox import Sandbox, SandboxConfig, run_sandbox

EDIT = "/api/v1/image/edit"
CONCURRENCY = 10
TARGET_THROUGHPUT = 0.8
TARGET_ADDED_MS = 2.0

Call = Callable[[], Awaitable[Any]]


async def sequential(call: Call, n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - started)
    return latencies


async def concurrent(call: Call, n: int, width: int = CONCURRENCY) -> float:
    """Calls per second with `width` calls in flight until `n` are done."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(width):
            tg.start_soon(worker)
    return n / (time.perf_counter() - started)


async def measure_direct(sandbox: Sandbox, n: int) -> tuple[list[float], float]:
    body = {
        "prompt": "warmer light",
        "model": catalog.DEFAULT_EDIT_MODEL,
        "aspectRatios": "1:1",
        "imageUrl": [sandbox.url("/samples/photo.jpg")],
    }
    async with httpx.AsyncClient(base_url=sandbox.base_url, headers={"APIKEY": sandbox.api_key}) as http:

        async def call() -> None:
            response = await http.post(EDIT, json=body)
            assert response.json()["code"] == 0

        await sequential(call, 5)  # warm the connection
        latencies = await sequential(call, n)
        throughput = await concurrent(call, n)
    return latencies, throughput


async def measure_mcp(sandbox: Sandbox, n: int, **env: str) -> tuple[list[float], float]:
    params = StdioServerParameters(command=CUTOUT_MCP, env=server_env(sandbox.base_url, sandbox.api_key, **env))
    arguments = {"prompt": "warmer light", "image_urls": [sandbox.url("/samples/photo.jpg")], "aspect_ratio": "1:1"}
    async with Client(params) as client:

        async def call() -> None:
            result = await client.call_tool("edit_image", arguments)
            assert not result.is_error, result.content

        await sequential(call, 5)  # warm the connection pools and the ledger
        latencies = await sequential(call, n)
        throughput = await concurrent(call, n)
    return latencies, throughput


async def run(calls: int = 200) -> list[Row]:
    config = SandboxConfig(video_format="gif", fetch_remote=False)
    async with run_sandbox(config) as sandbox:
        direct_lat, direct_tput = await measure_direct(sandbox, calls)
        mcp_lat, mcp_tput = await measure_mcp(sandbox, calls, CUTOUT_PREFLIGHT="off", CUTOUT_EDIT_PREVIEW="off")
        full_lat, full_tput = await measure_mcp(sandbox, max(20, calls // 4))
    d, m, f = median(direct_lat), median(mcp_lat), median(full_lat)
    added = m - d
    ratio = mcp_tput / direct_tput
    return [
        Row("call overhead", f"direct httpx edit, sequential (median of {calls})", ms(d)),
        Row(
            "call overhead",
            "MCP edit_image, sequential (median; preflight+preview off)",
            f"{ms(m)} (p90 {ms(quantile(mcp_lat, 0.9))})",
            floor=ms(d),
        ),
        Row(
            "call overhead",
            "added latency per call (MCP - direct, medians)",
            ms(added),
            floor="0 ms",
            target=f"< {TARGET_ADDED_MS:.0f} ms",
            met=added * 1000 < TARGET_ADDED_MS,
        ),
        Row("call overhead", f"direct httpx throughput at concurrency {CONCURRENCY}", f"{direct_tput:.0f} calls/s"),
        Row(
            "call overhead",
            f"MCP throughput at concurrency {CONCURRENCY} (preflight+preview off)",
            f"{mcp_tput:.0f} calls/s ({ratio:.2f}x)",
            floor=f"{direct_tput:.0f} calls/s",
            target=f">= {TARGET_THROUGHPUT}x direct",
            met=ratio >= TARGET_THROUGHPUT,
        ),
        Row(
            "call overhead",
            "MCP edit_image with defaults (preflight+preview on), sequential median / conc. 10",
            f"{ms(f)} / {full_tput:.0f} calls/s",
            floor=ms(d),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    print_rows(anyio.run(run, args.calls))


if __name__ == "__main__":
    main()
