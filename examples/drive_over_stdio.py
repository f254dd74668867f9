"""Drive cutout-mcp over stdio with the official MCP client, as an assistant would.

    CUTOUT_API_KEY=... python examples/drive_over_stdio.py https://example.com/photo.jpg

Starts the server as a subprocess, lists its tools, starts a video job while
printing the progress notifications, and resumes the job until it finishes.
Set CUTOUT_BASE_URL to use another upstream. A standalone sandbox there
(`cutout-mcp sandbox` prints its URL and key) needs CUTOUT_SANDBOX=1 as well:
it declares that loopback origin a sandbox, whose plain-http sample image and
results are then accepted; without it they are refused as loopback addresses.

    CUTOUT_SANDBOX=1 CUTOUT_BASE_URL=http://127.0.0.1:8787 CUTOUT_API_KEY=sandbox-key \
        python examples/drive_over_stdio.py http://127.0.0.1:8787/samples/photo.jpg

Or, simpler, no upstream at all: `CUTOUT_SANDBOX=1` alone runs a sandbox
inside the server (its instructions name the sample image URL).
"""

from __future__ import annotations

import os
import sys

import anyio
from mcp import Client, StdioServerParameters


async def main(image_url: str) -> int:
    server = StdioServerParameters(command=sys.executable, args=["-m", "cutout_mcp"], env=dict(os.environ))
    async with Client(server) as client:
        tools = await client.list_tools()
        print("tools:", ", ".join(tool.name for tool in tools.tools))

        async def show(progress: float, total: float | None, message: str | None) -> None:
            print(f"  {progress:5.1f}/{total or 100:.0f}  {message or ''}")

        result = await client.call_tool(
            "generate_video", {"image_url": image_url, "wait_seconds": 30}, progress_callback=show
        )
        while not result.is_error and result.structured_content["status"] in ("queued", "processing"):
            job_id = result.structured_content["id"]
            print(f"job {job_id} is still {result.structured_content['status']}; waiting again")
            result = await client.call_tool(
                "get_video_result", {"id": job_id, "wait_seconds": 30}, progress_callback=show
            )
        if result.is_error:
            print("error:", result.content[0].text if result.content else "unknown")
            return 1
        print("video:", result.structured_content["result_url"])
        return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(anyio.run(main, sys.argv[1]))
