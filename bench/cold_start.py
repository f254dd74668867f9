"""Cold start: from process spawn to the first `tools/list` answer over stdio.

The official client spawns the server and runs the handshake its default mode
negotiates, then asks for `tools/list`; the clock stops at that answer (the
shutdown afterwards is not timed). cutout-mcp runs with a key and a sandbox
URL (nothing is called at start-up) and a fresh ledger folder; the floor is
`bench/floor_server.py`, one trivial tool on the same SDK. Runs alternate
between the two so drift of a slow clock hits both alike; the first run of
each is a warm-up (page cache, .pyc) and is not counted.

    python bench/cold_start.py [--runs N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CUTOUT_MCP, FLOOR_SERVER, PYTHON, Row, median, ms, print_rows, server_env

TARGET_RATIO = 1.15


async def time_to_tools(params: StdioServerParameters) -> float:
    started = time.perf_counter()
    async with Client(params) as client:
        tools = await client.list_tools()
        elapsed = time.perf_counter() - started
    assert tools.tools, "the server lists tools"
    return elapsed


async def measure(runs: int) -> tuple[list[float], list[float]]:
    floor = StdioServerParameters(command=PYTHON, args=[FLOOR_SERVER])
    cutout = StdioServerParameters(
        command=CUTOUT_MCP, env=server_env("http://127.0.0.1:9", "bench-key", CUTOUT_PREFLIGHT="off")
    )
    floor_times: list[float] = []
    cutout_times: list[float] = []
    for i in range(runs + 1):
        f = await time_to_tools(floor)
        c = await time_to_tools(cutout)
        if i:  # the first pair warms caches
            floor_times.append(f)
            cutout_times.append(c)
    return floor_times, cutout_times


async def run(runs: int = 15) -> list[Row]:
    floor_times, cutout_times = await measure(runs)
    f, c = median(floor_times), median(cutout_times)
    ratio = c / f
    met = ratio <= TARGET_RATIO
    return [
        Row("cold start", f"floor server spawn -> tools/list (median of {runs})", ms(f)),
        Row(
            "cold start",
            f"cutout-mcp spawn -> tools/list (median of {runs})",
            ms(c),
            floor=ms(f),
            target=f"<= {TARGET_RATIO:.2f}x floor",
            met=met,
        ),
        Row(
            "cold start",
            "cutout-mcp / floor",
            f"{ratio:.2f}x",
            "1.00x",
            f"<= {TARGET_RATIO:.2f}x",
            ratio <= TARGET_RATIO,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print_rows(anyio.run(run, args.runs))


if __name__ == "__main__":
    main()
