"""Call overhead: `edit_image` through cutout-mcp against the floor, and what the preview costs.

A minimal loopback stand-in for the edit endpoint (`bench/edit_upstream.py`) answers at once, and its
result is a real 1024x576 JPEG. Every server is spawned over stdio and driven by the official client:

- **floor**: `bench/floor_edit_server.py`, the same SDK with one tool that forwards the edit through
  one shared httpx client (no validation beyond the SDK's, no ledger, no pre-flight, no preview);
- **core**: cutout-mcp with pre-flight and preview off (CUTOUT_PREFLIGHT=off, CUTOUT_PREVIEW=off),
  the like-for-like comparison with the floor;
- **preview on**: core with the inline preview on (it fetches and shrinks the result JPEG), in declared
  sandbox mode: result downloads go through the SSRF guard, which lets a loopback result through only
  from a declared sandbox, so without it there would be no preview to measure;
- **defaults** and **defaults, preview off**: every default (pre-flight and preview on) in declared
  sandbox mode (CUTOUT_SANDBOX=1), so the pre-flight may fetch the stand-in's input image on loopback.

All five servers are started once and stay up. Then, round after round (rotating the order), each
keeps 10 calls in flight for a short block and makes a few calls one at a time; the server's CPU time
is read from /proc around each block. The machine is shared and its speed drifts within seconds, so
short blocks taken in turn let every drift fall on every server alike: throughput is pooled over all
rounds (calls done / time taken), and each ratio is also given per round, as median and quartiles.
Latency is the median of every one-at-a-time call. A direct httpx POST (no MCP at all) is shown
for scale.

    python bench/call_overhead.py [--block N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
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
    Server("preview on", (CUTOUT_MCP,), {"CUTOUT_PREFLIGHT": "off", "CUTOUT_SANDBOX": "1"}),
    Server("defaults", (CUTOUT_MCP,), {"CUTOUT_SANDBOX": "1"}, sandbox_image=True),
    Server("defaults, preview off", (CUTOUT_MCP,), {"CUTOUT_SANDBOX": "1", "CUTOUT_PREVIEW": "off"}, True),
)


@dataclass
class Tally:
    """One server's blocks, round by round."""

    seconds: list[float] = field(default_factory=list)
    """Wall time of each round's concurrent block."""
    cpu: list[float] = field(default_factory=list)
    """Server CPU seconds of each round's concurrent block."""
    latencies: list[list[float]] = field(default_factory=list)
    """Each round's one-at-a-time calls."""

    def throughput(self, block: int) -> float:
        """Calls per second pooled over every round."""
        return block * len(self.seconds) / sum(self.seconds)

    def round_throughputs(self, block: int) -> list[float]:
        return [block / seconds for seconds in self.seconds]

    def cpu_ms_per_call(self, block: int) -> float:
        return 1000 * sum(self.cpu) / (block * len(self.cpu))

    @property
    def latency(self) -> float:
        return median([latency for round_ in self.latencies for latency in round_])

    def round_latencies(self) -> list[float]:
        return [median(round_) for round_ in self.latencies]


async def sequential(call: Call, n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - started)
    return latencies


async def concurrent(call: Call, n: int, width: int = CONCURRENCY) -> float:
    """Seconds taken with `width` calls in flight until `n` are done."""
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
    return time.perf_counter() - started


async def measure_direct(upstream: EditUpstream, n: int) -> tuple[float, float]:
    """Latency and throughput of the edit POST itself, with no MCP in between."""
    body = {"prompt": "warmer light", "model": "gemini-2.5-flash-image", "aspectRatios": "1:1", "imageUrl": []}
    async with httpx.AsyncClient(base_url=upstream.base_url, headers={"APIKEY": API_KEY}) as http:

        async def call() -> None:
            response = await http.post(EDIT_PATH, json=body)
            assert response.json()["code"] == 0

        await sequential(call, 10)  # warm the connection
        return median(await sequential(call, n)), n / await concurrent(call, n)


@dataclass(frozen=True)
class Started:
    """A spawned server, connected and warmed up."""

    call: Call
    pid: int


async def start(server: Server, upstream: EditUpstream, stack: AsyncExitStack) -> Started:
    image = upstream.base_url + SAMPLE_PATH if server.sandbox_image else "https://img.example.com/cat.jpg"
    arguments = {"prompt": "warmer light", "image_urls": [image], "aspect_ratio": "1:1"}
    env = server_env(upstream.base_url, API_KEY, **server.env)
    params = StdioServerParameters(command=server.command[0], args=list(server.command[1:]), env=env)
    before = set(child_pids())
    client = await stack.enter_async_context(Client(params))
    (pid,) = set(child_pids()) - before

    async def call() -> None:
        result = await client.call_tool("edit_image", arguments)
        assert not result.is_error, result.content

    await sequential(call, 30)  # warm the connection pools, the ledger and the first-use imports
    return Started(call, pid)


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """`median (first-third quartile)` of per-round figures."""
    low, _, high = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
    return f"{fmt.format(median(values))} ({fmt.format(low)}-{fmt.format(high)})"


async def take_turns(
    servers: Sequence[Server],
    upstream: EditUpstream,
    stack: AsyncExitStack,
    block: int,
    rounds: int,
    latency_calls: int,
) -> dict[str, Tally]:
    """Start every server, then for `rounds` rounds in rotating order give each a concurrent block of
    `block` calls and `latency_calls` one at a time, reading its CPU time around the block."""
    tallies = {server.name: Tally() for server in servers}
    started = {server.name: await start(server, upstream, stack) for server in servers}
    for round_number in range(rounds):
        shift = round_number % len(servers)
        for server in [*servers[shift:], *servers[:shift]]:
            tally, target = tallies[server.name], started[server.name]
            cpu = cpu_seconds(target.pid)
            tally.seconds.append(await concurrent(target.call, block))
            tally.cpu.append(cpu_seconds(target.pid) - cpu)
            tally.latencies.append(await sequential(target.call, latency_calls))
    return tallies


def throughput_ratio(x: Tally, y: Tally, block: int) -> tuple[float, list[float]]:
    """Pooled throughput ratio of `x` to `y`, and the same ratio round by round."""
    rounds = [p / q for p, q in zip(x.round_throughputs(block), y.round_throughputs(block), strict=True)]
    return x.throughput(block) / y.throughput(block), rounds


async def run(block: int = 150, rounds: int = 30, latency_calls: int = 15) -> list[Row]:
    async with run_edit_upstream() as upstream, AsyncExitStack() as stack:
        direct_latency, direct_throughput = await measure_direct(upstream, 200)
        tallies = await take_turns(SERVERS, upstream, stack, block, rounds, latency_calls)

    def ratio(a: str, b: str) -> tuple[float, list[float]]:
        return throughput_ratio(tallies[a], tallies[b], block)

    def figure(name: str) -> str:
        t = tallies[name]
        return f"{ms(t.latency)} / {t.throughput(block):.0f} calls/s / {t.cpu_ms_per_call(block):.2f} ms CPU"

    core_vs_floor, core_rounds = ratio("core", "floor")
    preview, preview_rounds = ratio("preview on", "core")
    defaults, defaults_rounds = ratio("defaults", "defaults, preview off")
    core, floor = tallies["core"], tallies["floor"]
    added = 1000 * (core.latency - floor.latency)
    added_rounds = [1000 * (c - f) for c, f in zip(core.round_latencies(), floor.round_latencies(), strict=True)]
    cpu_ratio = floor.cpu_ms_per_call(block) / core.cpu_ms_per_call(block)
    label = "call overhead"
    how = f"pooled over {rounds} interleaved rounds of {block} calls; per round: median (quartiles)"
    return [
        Row(
            label,
            "direct httpx edit, no MCP: latency / throughput at 10",
            f"{ms(direct_latency)} / {direct_throughput:.0f} calls/s",
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
            f"{core_vs_floor:.2f}x; {spread(core_rounds)}x",
            floor="1.00x",
            target=f">= {TARGET_FLOOR_RATIO}x",
            met=core_vs_floor >= TARGET_FLOOR_RATIO,
        ),
        Row(
            label,
            "core - floor latency per call, median of all one-at-a-time calls; per round: median (quartiles)",
            f"{added:.2f} ms; {spread(added_rounds)} ms",
            floor="0 ms",
            target=f"< {TARGET_ADDED_MS:.0f} ms",
            met=added < TARGET_ADDED_MS,
        ),
        Row(
            label,
            "floor / core server CPU per call, pooled",
            f"{cpu_ratio:.2f}x ({floor.cpu_ms_per_call(block):.2f} / {core.cpu_ms_per_call(block):.2f} ms)",
            floor="1.00x",
        ),
        Row(
            label,
            f"preview on / core throughput at concurrency {CONCURRENCY} (pre-flight off), {how}",
            f"{preview:.2f}x; {spread(preview_rounds)}x",
            floor="1.00x",
        ),
        Row(
            label,
            f"defaults / defaults with preview off, throughput at concurrency {CONCURRENCY}, {how}",
            f"{defaults:.2f}x; {spread(defaults_rounds)}x",
            floor="1.00x",
            target=f">= {TARGET_PREVIEW_RATIO}x",
            met=defaults >= TARGET_PREVIEW_RATIO,
        ),
    ]


def main_for(run: Callable[[int, int], Awaitable[list[Row]]], doc: str) -> None:
    """The command line of a benchmark built on `take_turns`: --block and --rounds, then its table."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--block", type=int, default=150, help="calls per concurrent block (default 150)")
    parser.add_argument("--rounds", type=int, default=30, help="rounds of blocks (default 30)")
    args = parser.parse_args()
    print_rows(anyio.run(run, args.block, args.rounds))


def main() -> None:
    main_for(run, __doc__ or "")


if __name__ == "__main__":
    main()
