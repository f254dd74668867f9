"""Instructions per `edit_image` call, cutout-mcp against the floor: the steady figure behind call_overhead.

Throughput on a shared machine moves with whatever else runs; the number of instructions a server
executes for one call does not. Each server (`bench/floor_edit_server.py`, and cutout-mcp with pre-flight
and preview off, as in `call_overhead.py`) runs under valgrind's callgrind, spawned over stdio by the
official client against the stand-in edit upstream. Counting starts after a warm-up (connection pools,
the ledger, first-use imports) and covers `--calls` calls with 10 in flight, every thread of the server
included, system calls excluded. Both counts repeat within about 3% across runs (how calls interleave
depends on timing), whatever else the machine runs.

Needs valgrind (Debian's `valgrind` package); without it the rows say so and nothing is measured.

    python bench/instructions.py [--calls N]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import FLOOR_EDIT_SERVER, PYTHON, Row, print_rows
from bench.call_overhead import OFF, TARGET_FLOOR_RATIO, Server, concurrent, start
from bench.edit_upstream import EditUpstream, run_edit_upstream

SERVERS = (Server("floor", (PYTHON, FLOOR_EDIT_SERVER)), Server("cutout-mcp", (PYTHON, "-m", "cutout_mcp"), OFF))


def _total(out: Path) -> int:
    """The instruction total of a callgrind dump (the larger of its `summary:` and `totals:` lines)."""
    lines = [line for line in out.read_text().splitlines() if line.startswith(("totals:", "summary:"))]
    if not lines:
        raise RuntimeError(f"no totals in {out}")
    return max(int(line.split()[1]) for line in lines)


def _largest_total(folder: Path) -> int:
    """The count of the dump taken after the measured calls (the one at exit holds only the shutdown)."""
    return max(_total(path) for path in folder.glob("callgrind.out*"))


async def count(server: Server, upstream: EditUpstream, calls: int, folder: Path) -> float:
    """Instructions per call of `server` run under callgrind (warmed up as `call_overhead` does)."""
    out = folder / "callgrind.out"
    valgrind = ("valgrind", "-q", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}")
    async with AsyncExitStack() as stack:
        started = await start(dataclasses.replace(server, command=(*valgrind, *server.command)), upstream, stack)
        control = ["callgrind_control", str(started.pid)]
        await anyio.run_process([*control, "--instr=on"])
        await concurrent(started.call, calls)
        await anyio.run_process([*control, "--instr=off"])
        await anyio.run_process([*control, "--dump"])
    return await anyio.to_thread.run_sync(_largest_total, folder) / calls


async def run(calls: int = 200) -> list[Row]:
    label = "instructions"
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        return [Row(label, "instructions per edit_image call (callgrind)", "not measured: valgrind is not installed")]
    per_call: dict[str, float] = {}
    async with run_edit_upstream() as upstream:
        for server in SERVERS:
            with tempfile.TemporaryDirectory(prefix="cutout-bench-cg-") as folder:
                per_call[server.name] = await count(server, upstream, calls, Path(folder))
    floor, ours = per_call["floor"], per_call["cutout-mcp"]
    ratio = floor / ours
    return [
        Row(
            label,
            f"floor: instructions per edit_image call over stdio ({calls} calls, 10 in flight)",
            f"{floor / 1e6:.2f} M",
        ),
        Row(
            label,
            "cutout-mcp (pre-flight and preview off): instructions per call",
            f"{ours / 1e6:.2f} M (+{(ours - floor) / 1e6:.2f} M)",
            floor=f"{floor / 1e6:.2f} M",
        ),
        Row(
            label,
            "floor / cutout-mcp instructions per call (what throughput would be with the same speed per instruction)",
            f"{ratio:.3f}x",
            floor="1.00x",
            target=f">= {TARGET_FLOOR_RATIO}x",
            met=ratio >= TARGET_FLOOR_RATIO,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    print_rows(anyio.run(run, args.calls))


if __name__ == "__main__":
    main()
