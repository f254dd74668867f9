"""`cutout-mcp` with the job ledger's worker-thread hand-offs run inline on the event loop: a probe.

    python bench/inline_threads.py [cutout-mcp arguments]

Not a configuration to ship (a slow disk or another process's lock would stall every call). It exists
so the benchmark can say how much of cutout-mcp's overhead over the floor is the ledger handing each
write to a thread and back: the ledger module sees an `anyio` whose `to_thread.run_sync` calls the
function at once; everything else (the SDK's stdio, downloads) keeps its threads.
"""

import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cutout_mcp.cli import main
from cutout_mcp.core import ledger

T = TypeVar("T")


async def run_inline(fn: Callable[..., T], *args: Any, **_: Any) -> T:
    return fn(*args)


class InlineThreads:
    """anyio, except that `to_thread.run_sync` runs the function at once, on the event loop."""

    to_thread = SimpleNamespace(run_sync=run_inline)

    def __getattr__(self, name: str) -> Any:
        return getattr(anyio, name)


if __name__ == "__main__":
    ledger.anyio = InlineThreads()  # type: ignore[assignment]
    sys.exit(main(sys.argv[1:]))
