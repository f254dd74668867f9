"""cutout-mcp with one or more parts taken out, for `bench/ablation.py` only (never a way to run it).

    CUTOUT_BENCH_WITHOUT=ledger-file,link python bench/ablated_server.py

What each name takes out of the `edit_image` path:

- `ledger-file`: the ledger lives in memory (the same SQLite code and statements, no file, no locks);
- `ledger`: no ledger at all (nothing reserved or recorded);
- `link`: the result has no resource link (its text and structured content are unchanged);
- `output-check`: the SDK does not validate the structured result against the output schema again.

Everything else is the installed cutout-mcp, started the way its `cutout-mcp` command starts it.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from typing import Any

PARTS = ("ledger-file", "ledger", "link", "output-check")


def take_out(parts: set[str]) -> None:
    unknown = parts - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown part(s) {sorted(unknown)}; known: {', '.join(PARTS)}")
    from cutout_mcp.core.storage.sqlite import MEMORY, SqliteStorage

    if "ledger-file" in parts:

        def in_memory(cls: type[SqliteStorage], state_dir: Path, clock: Any = None) -> SqliteStorage:
            return cls(MEMORY, clock)

        SqliteStorage.open_in = classmethod(in_memory)  # type: ignore[assignment,method-assign]
    if "ledger" in parts:
        charges = itertools.count(1)

        async def reserve(self: SqliteStorage, *args: Any, **kwargs: Any) -> int:
            return next(charges)

        async def record_edit(self: SqliteStorage, *args: Any) -> None:
            return None

        SqliteStorage.reserve = reserve  # type: ignore[method-assign]
        SqliteStorage.record_edit = record_edit  # type: ignore[method-assign]
    if "link" in parts:
        from cutout_mcp.core.outputs.downloads import Downloads
        from cutout_mcp.core.results import Delivered, EditResult

        async def deliver_edit(self: Downloads, result: EditResult) -> Delivered[EditResult]:
            return Delivered(result)

        Downloads.deliver_edit = deliver_edit  # type: ignore[method-assign]
    if "output-check" in parts:
        from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata

        def convert_result(self: FuncMetadata, result: Any) -> Any:
            return result  # every edit_image result is already a CallToolResult

        FuncMetadata.convert_result = convert_result  # type: ignore[method-assign]


if __name__ == "__main__":
    take_out({p for p in os.environ.get("CUTOUT_BENCH_WITHOUT", "").split(",") if p})
    from cutout_mcp.cli import main

    sys.argv[0] = "cutout-mcp"
    sys.exit(main())
