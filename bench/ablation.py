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

import sys
from contextlib import AsyncExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import FLOOR_EDIT_SERVER, PYTHON, Row
from bench.call_overhead import CONCURRENCY, OFF, Server, main_for, spread, take_turns, throughput_ratio
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
    async with run_edit_upstream() as upstream, AsyncExitStack() as stack:
        tallies = await take_turns(SERVERS, upstream, stack, block, rounds, latency_calls)
    floor = tallies["floor"]
    rows = []
    for server in SERVERS[1:]:
        tally = tallies[server.name]
        pooled, per_round = throughput_ratio(tally, floor, block)
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


if __name__ == "__main__":
    main_for(run, __doc__ or "")
