"""A seeded soak: faults mixed at random over three replicas, then the money and job invariants.

Starts a throwaway PostgreSQL, the sandbox as cutout.pro (`cutout-mcp sandbox`) and three
`cutout-mcp` replicas over streamable HTTP sharing the database, with a credit budget that runs out
mid-run and an allowances file that gives each principal limits of its own (bench/soaklib/policy.py).
Six clients (two per principal) call for the whole run while a schedule drawn from the seed
kills (-9) and stops (SIGTERM) replicas, restarts PostgreSQL, and makes the sandbox answer 5xx, hang,
drop or garble answers and fail its store, and makes the output folder unwritable. Then every
invariant is checked (bench/soaklib/checker.py); a violation prints the seed, the fault log and the
calls around it, and the exit code is 1. Everything runs on loopback and is stopped at the end.

    python bench/soak.py --minutes 3 --seed 1
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.soaklib.checker import check
from bench.soaklib.cluster import remove_run_dir
from bench.soaklib.history import History
from bench.soaklib.report import explain, summary
from bench.soaklib.run import settings_for, soak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long the clients call (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="draws the faults and every client's calls")
    parser.add_argument("--budget", type=int, help="CUTOUT_CREDIT_BUDGET (default: runs out mid-run)")
    parser.add_argument(
        "--no-allowances",
        dest="allowances",
        action="store_false",
        help="run under the budget alone (by default each principal has allowances: bench/soaklib/policy.py)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs, history.json)")
    parser.add_argument("--check", type=Path, metavar="HISTORY", help="only check a kept run's history.json again")
    args = parser.parse_args()
    if args.check is not None:
        return report(History.load(args.check.read_text()), None, keep=True)
    if not 0 < args.minutes <= 120:
        parser.error("--minutes must be more than 0 and at most 120")
    # a 2025-11-25 session whose replica was restarted is gone: closing it is answered 404, as expected
    logging.getLogger("mcp.client.streamable_http").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, _interrupt)  # stopped like Ctrl-C: everything started is stopped first
    run_dir = Path(tempfile.mkdtemp(prefix="cutout-soak-"))
    try:
        history = anyio.run(
            soak, args.minutes, args.seed, settings_for(run_dir, args.minutes, args.budget, args.allowances)
        )
    except KeyboardInterrupt:
        print(f"soak interrupted; every process it started is stopped (run folder: {run_dir})", file=sys.stderr)
        return 130
    (run_dir / "history.json").write_text(history.dump())
    return report(history, run_dir, keep=args.keep)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def report(history: History, run_dir: Path | None, *, keep: bool) -> int:
    """Check, print, and keep the run folder when something was found (or asked to); the exit code."""
    violations = check(history)
    for violation in violations:
        print(explain(history, violation), flush=True)
    print(summary(history, violations), flush=True)
    if run_dir is not None and (violations or keep):
        print(f"run folder kept: {run_dir} (history.json, logs/)")
    elif run_dir is not None:
        remove_run_dir(run_dir)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
