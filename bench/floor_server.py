"""The floor: a minimal MCPServer with one trivial tool, on the same SDK as cutout-mcp.

    python bench/floor_server.py                                    # stdio (cold start floor)
    python bench/floor_server.py --transport streamable-http --port N   # many-jobs memory floor

`echo` may wait `seconds` before answering, so many calls can be held open at once.
"""

import argparse

import anyio
from mcp.server.mcpserver import MCPServer

server = MCPServer("floor")


@server.tool()
async def echo(text: str, seconds: float = 0) -> str:
    """Return the text unchanged, after `seconds`."""
    if seconds > 0:
        await anyio.sleep(min(seconds, 60))
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", default="stdio", choices=["stdio", "streamable-http"])
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.port)
