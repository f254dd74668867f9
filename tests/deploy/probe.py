"""Ask a running cutout-mcp container what a balancer and a client would: is it alive and ready, does it
refuse a caller without a token, and does a tool call with one work.

    python tests/deploy/probe.py http://127.0.0.1:18000 --token-file TOKENS [--call-tool] [--wait 60]

The server is polled (at most `--wait` seconds) until it answers, so a container that is still starting
is given the time it needs and one that never starts fails with its reason. `--call-tool`
calls `edit_image` on the sandbox's sample image (the container runs with CUTOUT_SANDBOX=1). Exit code 0
when every check holds; otherwise the first failed check is printed and the code is 1.
"""

from __future__ import annotations

import argparse
import re
import sys
import time

import anyio
import httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

TOOLS = {"generate_video", "get_video_result", "edit_image"}
SAMPLE = re.compile(r"https?://[^\s;]+/samples/photo\.jpg")


class CheckFailed(Exception):
    """One of the checks did not hold; the message says which and what was seen."""


def wait_until_alive(base: str, seconds: float) -> dict[str, object]:
    """`/healthz`'s JSON: polled until the server answers at all (at most `seconds`), then it must be 200."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            response = httpx.get(f"{base}/healthz", timeout=2)
            break
        except httpx.HTTPError as exc:
            if time.monotonic() > deadline:
                raise CheckFailed(f"no answer within {seconds:.0f} s ({type(exc).__name__}: {exc})") from exc
        time.sleep(0.25)  # a script polling a starting container, not a test's timing
    if response.status_code != 200:
        raise CheckFailed(f"/healthz answered {response.status_code}, expected 200: {response.text[:200]}")
    body: dict[str, object] = response.json()
    return body


def check_ready_and_guarded(base: str) -> None:
    ready = httpx.get(f"{base}/readyz", timeout=5)
    if ready.status_code != 200:
        raise CheckFailed(f"/readyz answered {ready.status_code}, expected 200: {ready.text[:200]}")
    anonymous = httpx.post(f"{base}/mcp", json={}, timeout=5)
    if anonymous.status_code != 401:
        raise CheckFailed(f"/mcp without a token answered {anonymous.status_code}, expected 401")


async def check_tools(base: str, token: str, call_tool: bool) -> str:
    """List the tools with the bearer token, and with `call_tool` edit the sandbox's sample image."""
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        if missing := TOOLS - names:
            raise CheckFailed(f"tools/list lacks {sorted(missing)}")
        if not call_tool:
            return f"{len(names)} tools listed"
        sample = SAMPLE.search(client.instructions or "")
        if sample is None:
            raise CheckFailed("the instructions name no sandbox sample image: is CUTOUT_SANDBOX=1 set?")
        edit = await client.call_tool("edit_image", {"prompt": "warmer light", "image_urls": [sample.group()]})
        text = " ".join(getattr(block, "text", "") for block in edit.content)
        if edit.is_error or not edit.structured_content:
            raise CheckFailed(f"edit_image failed: {text[:300]}")
        charged = edit.structured_content.get("credits_charged")
        return f"{len(names)} tools listed, edit_image answered ({charged} sandbox credits)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the published address, e.g. http://127.0.0.1:18000")
    parser.add_argument("--token-file", required=True, help="a CUTOUT_MCP_TOKEN_FILE: its first name:token is used")
    parser.add_argument("--call-tool", action="store_true", help="call edit_image (needs CUTOUT_SANDBOX=1)")
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for /healthz")
    args = parser.parse_args()
    base = args.base.rstrip("/")
    with open(args.token_file) as tokens:
        token = next(line for line in tokens if line.strip() and not line.startswith("#")).strip().partition(":")[2]
    try:
        health = wait_until_alive(base, args.wait)
        check_ready_and_guarded(base)
        summary = anyio.run(check_tools, base, token, args.call_tool)
    except CheckFailed as exc:
        print(f"probe {base}: FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"probe {base}: /healthz {health.get('status')}, /readyz 200, 401 without a token, {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
