"""Run every benchmark against the local sandbox, print one table, and write it to bench/results.md.

    python bench/run_all.py            # the full run (a few minutes)
    python bench/run_all.py --quick    # fewer repetitions, for a smoke check

Each benchmark is also a script of its own (`python bench/cold_start.py`, ...).
Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    allowance,
    attribution,
    call_overhead,
    cold_start,
    contact_sheet,
    instructions,
    many_jobs,
    poll_efficiency,
    replicas,
    staging,
    storage_ops,
    viewer,
)
from bench._common import BENCH_DIR, Row, table

RESULTS = BENCH_DIR / "results.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (numbers are noisier)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"where to write the table (default {RESULTS})")
    args = parser.parse_args()
    runs, calls, rounds, jobs = (5, 50, 3, 100) if args.quick else (15, 200, 30, 500)

    rows: list[Row] = []
    load_before = os.getloadavg()[0]
    steps = [
        ("cold start", lambda: anyio.run(cold_start.run, runs)),
        ("call overhead", lambda: anyio.run(call_overhead.run, calls * 3 // 4, rounds)),  # calls per block, rounds
        ("instructions", lambda: anyio.run(instructions.run, 100 if args.quick else 200)),
        ("attribution", lambda: anyio.run(attribution.run, 40 if rounds > 3 else 4)),
        ("many jobs", lambda: anyio.run(many_jobs.run, jobs)),
        ("replicas", lambda: anyio.run(replicas.run, jobs)),
        ("storage", lambda: anyio.run(storage_ops.run, calls * 10)),
        ("allowance", lambda: anyio.run(allowance.run, calls * 10, 10_000)),
        ("staging", lambda: anyio.run(staging.run, 5 if args.quick else 15)),
        ("poll efficiency", poll_efficiency.run),
        ("contact sheet", lambda: contact_sheet.run(3 if args.quick else 7)),
        ("viewer", lambda: viewer.run(3 if args.quick else 7)),
    ]
    for name, step in steps:
        started = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += step()
        print(f"  done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    summary = table(rows)
    print(summary)
    machine = f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}"
    cores = os.cpu_count()
    load = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {cores} cores"
    args.output.write_text(
        "# cutout-mcp benchmark results\n\n"
        f"`python bench/run_all.py{' --quick' if args.quick else ''}` on {time.strftime('%Y-%m-%d')}, {machine} "
        f"({load}). Medians unless stated; see each script's docstring for what is measured. Absolute "
        "figures move with whatever else the machine runs; ratios are taken side by side within a round.\n\n"
        f"{summary}\n\n## Poll efficiency per job (reads / completion-to-notification delay)\n\n"
        f"{poll_efficiency.detail(poll_efficiency.results())}\n"
    )
    print(f"\nwritten to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
