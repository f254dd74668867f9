"""The floor for `edit_image`: the same SDK, one tool that forwards the edit with one shared httpx client.

    CUTOUT_BASE_URL=http://127.0.0.1:N CUTOUT_API_KEY=... python bench/floor_edit_server.py

No validation beyond the SDK's own, no ledger, no pre-flight, no preview: what any MCP server that
forwards this call must spend. `edit_image` takes the same arguments as cutout-mcp's and returns the
upstream's `data` object.
"""

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from mcp.server.mcpserver import Context, MCPServer


@asynccontextmanager
async def lifespan(_: MCPServer[httpx.AsyncClient]) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"APIKEY": os.environ.get("CUTOUT_API_KEY", "")}
    async with httpx.AsyncClient(base_url=os.environ["CUTOUT_BASE_URL"], headers=headers, timeout=30) as http:
        yield http


server: MCPServer[httpx.AsyncClient] = MCPServer("floor-edit", lifespan=lifespan)


@server.tool()
async def edit_image(
    prompt: str,
    image_urls: list[str],
    ctx: Context[httpx.AsyncClient, Any],
    model: str = "gemini-2.5-flash-image",
    aspect_ratio: str = "original",
) -> dict[str, Any]:
    """Forward the edit to the upstream and return its answer's data."""
    http = ctx.request_context.lifespan_context
    body = {"prompt": prompt, "model": model, "aspectRatios": aspect_ratio, "imageUrl": image_urls}
    response = await http.post("/api/v1/image/edit", json=body)
    data: dict[str, Any] = response.json()["data"]
    return data


logging.getLogger("httpx").setLevel(logging.WARNING)  # like cutout-mcp: no log line per request

if __name__ == "__main__":
    server.run("stdio")
