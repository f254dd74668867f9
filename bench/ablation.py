"""Where core's distance from the floor goes: cutout-mcp with parts taken out, beside the floor.

The same method as `call_overhead.py` (every server up at once, interleaved rounds of 10 calls in
flight, throughput pooled over the rounds, latency from one-at-a-time calls), for the floor, core
(pre-flight and preview off) and core with one part taken out at a time by
`bench/ablated_server.py`:

- **ledger file**: the ledger in memory (the same SQLite statements; no file, no locks);
- **ledger**: no ledger at all;
- **link**: no resource link in the result;
- **output check**: the SDK does not validate the structured result again;
- **all three**: no ledger, no link, no output check.

These parts are promises (a charge is durable before the request leaves; the client gets a link it
can open and a result that matches the published schema), so this measures what they cost, not
something to switch off.

    python bench/ablation.py [--block N] [--rounds R]
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import FLOOR_EDIT_SERVER, PYTHON, Row, cpu_seconds, print_rows
from bench.call_overhead import CONCURRENCY, OFF, Server, Tally, concurrent, sequential, spread, start
from bench.edit_upstream import run_edit_upstream

ABLATED = str(Path(__file__).resolve().with_name("ablated_server.py"))


def without(name: str, parts: str) -> Server:
    return Server(name, (PYTHON, ABLATED), {**OFF, "CUTOUT_BENCH_WITHOUT": parts})


SERVERS = (
    Server("floor", (PYTHON, FLOOR_EDIT_SERVER)),
    without("core", ""),
    without("core without the ledger file", "ledger-file"),
    without("core without the ledger", "ledger"),
    without("core without the link", "link"),
    without("core without the output check", "output-check"),
    without("core without all three", "ledger,link,output-check"),
)


async def run(block: int = 150, rounds: int = 30, latency_calls: int = 15) -> list[Row]:
    tallies = {server.name: Tally() for server in SERVERS}
    async with run_edit_upstream() as upstream, AsyncExitStack() as stack:
        started = {server.name: await start(server, upstream, stack) for server in SERVERS}
        for round_number in range(rounds):
            shift = round_number % len(SERVERS)
            for server in SERVERS[shift:] + SERVERS[:shift]:
                tally, target = tallies[server.name], started[server.name]
                cpu = cpu_seconds(target.pid)
                tally.seconds.append(await concurrent(target.call, block))
                tally.cpu.append(cpu_seconds(target.pid) - cpu)
                tally.latencies.append(await sequential(target.call, latency_calls))
    floor = tallies["floor"]
    rows = []
    for server in SERVERS[1:]:
        tally = tallies[server.name]
        pooled = tally.throughput(block) / floor.throughput(block)
        per_round = [a / b for a, b in zip(tally.round_throughputs(block), floor.round_throughputs(block), strict=True)]
        added = 1000 * (tally.latency - floor.latency)
        cpu = tally.cpu_ms_per_call(block) - floor.cpu_ms_per_call(block)
        rows.append(
            Row(
                "ablation",
                f"{server.name} / floor: throughput at {CONCURRENCY} pooled; per round median (quartiles); "
                "added latency; added server CPU per call",
                f"{pooled:.2f}x; {spread(per_round)}x; {added:+.2f} ms; {cpu:+.2f} ms",
                floor=f"{floor.throughput(block):.0f} calls/s, {floor.cpu_ms_per_call(block):.2f} ms CPU",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=150, help="calls per concurrent block (default 150)")
    parser.add_argument("--rounds", type=int, default=30, help="rounds of blocks (default 30)")
    args = parser.parse_args()
    print_rows(anyio.run(run, args.block, args.rounds))


if __name__ == "__main__":
    main()
