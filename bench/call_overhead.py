"""Call overhead: `edit_image` through cutout-mcp against the floor, and what the preview costs.

A minimal loopback stand-in for the edit endpoint (`bench/edit_upstream.py`) answers at once, and its
result is a real 1024x576 JPEG. Every server is spawned over stdio and driven by the official client:

- **floor**: `bench/floor_edit_server.py`, the same SDK with one tool that forwards the edit through
  one shared httpx client (no validation beyond the SDK's, no ledger, no pre-flight, no preview);
- **core**: cutout-mcp with pre-flight and preview off (CUTOUT_PREFLIGHT=off, CUTOUT_PREVIEW=off),
  the like-for-like comparison with the floor;
- **preview on**: core with the inline preview on (it fetches and shrinks the result JPEG);
- **defaults** and **defaults, preview off**: every default (pre-flight and preview on) in declared
  sandbox mode (CUTOUT_SANDBOX=1), so the pre-flight may fetch the stand-in's input image on loopback.

Each server makes sequential calls (latency) and then keeps 10 in flight (throughput), and the
server's CPU time per call is read from /proc. The machine is shared, so absolute numbers drift:
the servers are measured side by side in several rounds (rotating the order), each ratio is taken
within a round, and the median ratio and its range over the rounds are reported. A direct httpx
POST (no MCP at all) is shown for scale.

    python bench/call_overhead.py [--calls N] [--rounds R]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client, StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    CUTOUT_MCP,
    FLOOR_EDIT_SERVER,
    PYTHON,
    Row,
    child_pids,
    cpu_seconds,
    median,
    ms,
    print_rows,
    server_env,
)
from bench.edit_upstream import API_KEY, EDIT_PATH, SAMPLE_PATH, EditUpstream, run_edit_upstream

CONCURRENCY = 10
TARGET_FLOOR_RATIO = 0.9
TARGET_ADDED_MS = 1.0
TARGET_PREVIEW_RATIO = 0.6
OFF = {"CUTOUT_PREFLIGHT": "off", "CUTOUT_PREVIEW": "off"}

Call = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class Server:
    name: str
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    sandbox_image: bool = False
    """Send the stand-in's own (loopback, http) image: only a declared sandbox accepts it."""


SERVERS = (
    Server("floor", (PYTHON, FLOOR_EDIT_SERVER)),
    Server("core", (CUTOUT_MCP,), OFF),
    Server("preview on", (CUTOUT_MCP,), {"CUTOUT_PREFLIGHT": "off"}),
    Server("defaults", (CUTOUT_MCP,), {"CUTOUT_SANDBOX": "1"}, sandbox_image=True),
    Server("defaults, preview off", (CUTOUT_MCP,), {"CUTOUT_SANDBOX": "1", "CUTOUT_PREVIEW": "off"}, True),
)


@dataclass(frozen=True)
class Run:
    latencies: list[float]
    throughput: float
    cpu_ms_per_call: float

    @property
    def latency(self) -> float:
        return median(self.latencies)


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


async def measure_direct(upstream: EditUpstream, n: int) -> Run:
    body = {"prompt": "warmer light", "model": "gemini-2.5-flash-image", "aspectRatios": "1:1", "imageUrl": []}
    async with httpx.AsyncClient(base_url=upstream.base_url, headers={"APIKEY": API_KEY}) as http:

        async def call() -> None:
            response = await http.post(EDIT_PATH, json=body)
            assert response.json()["code"] == 0

        await sequential(call, 10)  # warm the connection
        return Run(await sequential(call, n), await concurrent(call, n), 0.0)


async def measure(server: Server, upstream: EditUpstream, n: int) -> Run:
    image = upstream.base_url + SAMPLE_PATH if server.sandbox_image else "https://img.example.com/cat.jpg"
    arguments = {"prompt": "warmer light", "image_urls": [image], "aspect_ratio": "1:1"}
    env = server_env(upstream.base_url, API_KEY, **server.env)
    params = StdioServerParameters(command=server.command[0], args=list(server.command[1:]), env=env)
    async with Client(params) as client:
        (pid,) = child_pids()

        async def call() -> None:
            result = await client.call_tool("edit_image", arguments)
            assert not result.is_error, result.content

        await sequential(call, 20)  # warm the connection pools, the ledger and the first-use imports
        latencies = await sequential(call, n)
        cpu = cpu_seconds(pid)
        throughput = await concurrent(call, n)
        cpu = cpu_seconds(pid) - cpu
    return Run(latencies, throughput, 1000 * cpu / n)


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """`median (min-max)` of per-round figures."""
    return f"{fmt.format(median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


async def run(calls: int = 200, rounds: int = 5) -> list[Row]:
    results: dict[str, list[Run]] = {server.name: [] for server in SERVERS}
    async with run_edit_upstream() as upstream:
        direct = await measure_direct(upstream, calls)
        for round_number in range(rounds):
            shift = round_number % len(SERVERS)
            for server in SERVERS[shift:] + SERVERS[:shift]:
                results[server.name].append(await measure(server, upstream, calls))

    def per_round(f: Callable[[Run, Run], float], a: str, b: str) -> list[float]:
        return [f(x, y) for x, y in zip(results[a], results[b], strict=True)]

    def figure(name: str) -> str:
        runs = results[name]
        latency = median([r.latency for r in runs])
        throughput = median([r.throughput for r in runs])
        cpu = median([r.cpu_ms_per_call for r in runs])
        return f"{ms(latency)} / {throughput:.0f} calls/s / {cpu:.2f} ms CPU"

    core_vs_floor = per_round(lambda c, f: c.throughput / f.throughput, "core", "floor")
    added = per_round(lambda c, f: 1000 * (c.latency - f.latency), "core", "floor")
    cpu_added = per_round(lambda c, f: c.cpu_ms_per_call - f.cpu_ms_per_call, "core", "floor")
    cpu_ratio = per_round(lambda c, f: f.cpu_ms_per_call / c.cpu_ms_per_call, "core", "floor")
    preview = per_round(lambda p, c: p.throughput / c.throughput, "preview on", "core")
    defaults = per_round(lambda d, o: d.throughput / o.throughput, "defaults", "defaults, preview off")
    label = "call overhead"
    how = f"median of {rounds} rounds (range)"
    return [
        Row(
            label,
            "direct httpx edit, no MCP: latency / throughput at 10",
            f"{ms(direct.latency)} / {direct.throughput:.0f} calls/s",
        ),
        *[
            Row(
                label,
                f"{server.name}: latency / throughput at {CONCURRENCY} / server CPU per call",
                figure(server.name),
            )
            for server in SERVERS
        ],
        Row(
            label,
            f"core / floor throughput at concurrency {CONCURRENCY}, {how}",
            spread(core_vs_floor) + "x",
            floor="1.00x",
            target=f">= {TARGET_FLOOR_RATIO}x",
            met=median(core_vs_floor) >= TARGET_FLOOR_RATIO,
        ),
        Row(
            label,
            f"core - floor latency per call (sequential medians), {how}",
            spread(added, "{:.2f}") + " ms",
            floor="0 ms",
            target=f"< {TARGET_ADDED_MS:.0f} ms",
            met=median(added) < TARGET_ADDED_MS,
        ),
        Row(
            label,
            f"floor / core server CPU per call (steadier than throughput on a shared machine), {how}",
            spread(cpu_ratio) + "x",
            floor="1.00x",
        ),
        Row(label, f"core - floor server CPU per call, {how}", spread(cpu_added, "{:.2f}") + " ms", floor="0 ms"),
        Row(
            label,
            f"preview on / core throughput at concurrency {CONCURRENCY} (pre-flight off), {how}",
            spread(preview) + "x",
            floor="1.00x",
        ),
        Row(
            label,
            f"defaults / defaults with preview off, throughput at concurrency {CONCURRENCY}, {how}",
            spread(defaults) + "x",
            floor="1.00x",
            target=f">= {TARGET_PREVIEW_RATIO}x",
            met=median(defaults) >= TARGET_PREVIEW_RATIO,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print_rows(anyio.run(run, args.calls, args.rounds))


if __name__ == "__main__":
    main()
