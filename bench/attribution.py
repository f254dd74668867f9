"""Where cutout-mcp's per-call CPU goes, beside the floor: one process, calls interleaved.

The stdio benchmark (`call_overhead.py`) measures what a user sees, but on a shared machine its
figures move by tens of percent from one round to the next. This one runs the servers in this
process (the official client's in-memory transport) against the stand-in edit upstream, and takes
turns: 50 calls to each server, round after round, summing the process's CPU time per server. Slow
moments of the machine then fall on every server alike. It reports CPU per call (client side
included, which is the same work for every server but for the larger result cutout-mcp validates)
for:

the floor (`floor_edit_server.py`) and cutout-mcp with pre-flight and preview off.

    python bench/attribution.py [--rounds R]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
from mcp import Client
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Row, print_rows, state_dir
from bench.edit_upstream import API_KEY, run_edit_upstream
from cutout_mcp.config import Settings
from cutout_mcp.server import build_server

BLOCK = 50
ARGUMENTS = {"prompt": "warmer light", "image_urls": ["https://img.example.com/cat.jpg"], "aspect_ratio": "1:1"}


async def run(rounds: int = 40) -> list[Row]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level  # every MCPServer configures the root logger
    from bench import floor_edit_server

    logging.disable(logging.INFO)  # no per-request log lines from any of them
    async with run_edit_upstream() as upstream, AsyncExitStack() as stack:
        os.environ["CUTOUT_BASE_URL"], os.environ["CUTOUT_API_KEY"] = upstream.base_url, API_KEY

        def settings() -> Settings:
            return Settings(
                api_key=SecretStr(API_KEY),
                base_url=upstream.base_url,
                preflight=False,
                preview=False,
                state_dir=Path(state_dir()),
            )

        clients = {
            "floor": await stack.enter_async_context(Client(floor_edit_server.server)),
            "cutout-mcp": await stack.enter_async_context(Client(build_server(settings()))),
        }
        cpu = dict.fromkeys(clients, 0.0)
        try:
            for client in clients.values():
                for _ in range(BLOCK):  # warm up
                    await client.call_tool("edit_image", ARGUMENTS)
            for _ in range(rounds):
                for name, client in clients.items():
                    started = time.process_time()
                    for _ in range(BLOCK):
                        result = await client.call_tool("edit_image", ARGUMENTS)
                        assert not result.is_error, result.content
                    cpu[name] += time.process_time() - started
        finally:
            logging.disable(logging.NOTSET)
            root.handlers[:], root.level = saved_handlers, saved_level
    per_call = {name: 1000 * seconds / (rounds * BLOCK) for name, seconds in cpu.items()}
    floor, ours = per_call["floor"], per_call["cutout-mcp"]
    label = "attribution"
    how = f"{rounds * BLOCK} calls each, interleaved in blocks of {BLOCK}, one process"
    return [
        Row(label, f"floor: CPU per call ({how})", f"{floor:.2f} ms"),
        Row(
            label,
            "cutout-mcp (pre-flight and preview off): CPU per call",
            f"{ours:.2f} ms ({floor / ours:.2f}x)",
            floor=f"{floor:.2f} ms",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    print_rows(anyio.run(run, args.rounds))


if __name__ == "__main__":
    main()
