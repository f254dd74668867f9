"""`cutout-mcp demo`: the server at work, with no key and no credits.

Starts `cutout-mcp --sandbox` over stdio and talks to it with the official
MCP client exactly as an assistant would: lists the tools, saves the sandbox's
sample photo as a local file, edits that file, makes a video from it (passing
the path, as a person would name a picture on their disk) while drawing a
progress bar from the progress notifications, resumes the job if the first
wait ends early, and saves what a person would look at: the edited image, the
video, its cover and its contact sheet (the picture the assistant was shown). The sandbox stages the local file on
its own origin, so no bucket is needed.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult, ImageContent

from cutout_mcp.sandbox_mode import SANDBOX_RESOURCE

BAR_WIDTH = 30


def run_demo(output: str) -> int:
    folder = Path(output).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return anyio.run(_demo, folder)


def _server(folder: Path) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOUT_")}
    env["CUTOUT_INPUT_DIRS"] = str(folder)  # the one folder the demo's server may read images from
    args = ["-m", "cutout_mcp", "--sandbox", "--queue-seconds", "3", "--job-seconds", "9", "--log-level", "WARNING"]
    return StdioServerParameters(command=sys.executable, args=args, env=env)


def _say(text: str = "") -> None:
    print(text, flush=True)


class ProgressBar:
    """Draws progress notifications; redraws in place on a terminal, one line each otherwise."""

    def __init__(self) -> None:
        self.live = sys.stdout.isatty()
        self.drawn = False

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        fraction = max(0.0, min(1.0, progress / (total or 100)))
        filled = int(fraction * BAR_WIDTH)
        line = f"  [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction * 100:5.1f}%  {message or ''}"
        if self.live:
            width = shutil.get_terminal_size((100, 20)).columns
            print("\r" + line[: width - 1].ljust(width - 1), end="", flush=True)
            self.drawn = True
        else:
            _say(line)

    def finish(self) -> None:
        if self.drawn:
            _say()
            self.drawn = False


def _fail(result: CallToolResult) -> int:
    text = " ".join(getattr(block, "text", "") for block in result.content)
    _say(f"error: {text}")
    return 1


async def _save(http: httpx.AsyncClient, url: str, folder: Path, stem: str) -> Path:
    suffix = Path(url.split("?", 1)[0]).suffix or ".bin"
    target = folder / f"{stem}{suffix}"
    async with http.stream("GET", url) as response:
        response.raise_for_status()
        with target.open("wb") as file:
            async for chunk in response.aiter_bytes():
                file.write(chunk)
    return target


def _save_picture(result: CallToolResult, target: Path) -> Path | None:
    """The picture a result shows the assistant (a video's contact sheet), if it has one."""
    for block in result.content:
        if isinstance(block, ImageContent):
            target.write_bytes(base64.b64decode(block.data))
            return target
    return None


async def _demo(folder: Path) -> int:
    _say("Starting cutout-mcp in sandbox mode over stdio (no API key, no credits)...")
    async with Client(_server(folder)) as client, httpx.AsyncClient(timeout=30) as http:
        info = client.server_info
        _say(f"Connected to {info.name if info else 'cutout-mcp'} {info.version if info else ''}")
        tools = (await client.list_tools()).tools
        _say("Tools: " + ", ".join(tool.name for tool in tools))
        sandbox: dict[str, Any] = json.loads(
            getattr((await client.read_resource(SANDBOX_RESOURCE)).contents[0], "text", "{}")
        )
        image = str(await _save(http, sandbox["sample_image_url"], folder, "source"))
        _say(f"Source image, a local file: {image}\n")

        _say("1. edit_image: 'Give the scene a warm sunset glow' with gemini-2.5-flash-image, 16:9")
        edit = await client.call_tool(
            "edit_image",
            {
                "prompt": "Give the scene a warm sunset glow",
                "image_urls": [image],
                "model": "gemini-2.5-flash-image",
                "aspect_ratio": "16:9",
            },
        )
        if edit.is_error or edit.structured_content is None:
            return _fail(edit)
        edited = await _save(http, edit.structured_content["image_url"], folder, "edited")
        _say(f"   {edit.structured_content['message']} Saved {edited}\n")

        _say("2. generate_video: 'slow zoom over the hills', waiting with progress")
        bar = ProgressBar()
        result = await client.call_tool(
            "generate_video",
            {"image_url": image, "prompt": "slow zoom over the hills", "wait_seconds": 20},
            progress_callback=bar,
        )
        while not result.is_error and result.structured_content and result.structured_content["next_step"]:
            bar.finish()
            job_id = result.structured_content["id"]
            _say(f"   Not finished yet; resuming with get_video_result(id={job_id})")
            result = await client.call_tool(
                "get_video_result", {"id": job_id, "wait_seconds": 20}, progress_callback=bar
            )
        bar.finish()
        if result.is_error or result.structured_content is None:
            return _fail(result)
        job = result.structured_content
        video = await _save(http, job["result_url"], folder, f"video-{job['id']}")
        cover = await _save(http, job["cover_url"], folder, f"cover-{job['id']}")
        sheet = _save_picture(result, folder / f"contact-sheet-{job['id']}.jpg")
        _say(f"   {job['message']} {job['width']}x{job['height']}, {job['credits_charged']} (sandbox) credits.")
        saved = [edited, video, cover] + ([sheet] if sheet else [])
        _say(f"\nSaved to {folder}:\n" + "\n".join(f"  {path.name}" for path in saved))
        if sheet:
            _say(f"{sheet.name} is the video's contact sheet, the picture the assistant was shown.")
    return 0
