"""The server's prompts: ready-made requests a user picks from the client's prompt menu.

`video_from_photo` walks the assistant from one photo to a finished, saved video: the spend stated and
agreed before anything is paid, one `generate_video`, `get_video_result` until the job ends, and where
the video is at the end. The text is built from the catalog and the settings (is there an output
folder?), so it never promises what this server does not do.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from cutout_mcp import catalog
from cutout_mcp.config import Settings
from cutout_mcp.core.context import AppContext

VIDEO_FROM_PHOTO = "video_from_photo"


def register(server: MCPServer[AppContext], settings: Settings) -> None:
    @server.prompt(
        name=VIDEO_FROM_PHOTO,
        title="Make a video from a photo",
        description=(
            f"From one photo to a finished, saved video: the spend ({catalog.VIDEO_CREDITS} credits) is stated "
            "and agreed first, then one video job is made and watched to the end."
        ),
    )
    def video_from_photo(
        image: Annotated[
            str,
            Field(description="The photo: a public https URL, a local path or file:// URI, or an upload: reference."),
        ],
        motion: Annotated[
            str | None, Field(description="What should move, in plain words (optional: the model decides).")
        ] = None,
    ) -> str:
        return video_request(image, motion, saved=settings.output_dir is not None)


def video_request(image: str, motion: str | None, *, saved: bool) -> str:
    """The user's request, step by step; `saved` says whether the server keeps finished videos on disk."""
    wish = f"I would like it to show: {motion.strip()}" if motion and motion.strip() else "Choose the motion yourself."
    keep = (
        "The server saves the finished video: tell me its local_path."
        if saved
        else "This server does not save videos (no CUTOUT_OUTPUT_DIR), so give me the result_url and tell me to "
        "download it soon, because the link expires."
    )
    return "\n".join(
        [
            "Make a short video from this photo:",
            image.strip(),
            wish,
            "",
            f"1. Before spending anything, tell me that this costs {catalog.VIDEO_CREDITS} credits (one "
            "generate_video call; reading the job afterwards is free) and wait for my yes. If list_video_jobs "
            "shows a budget, say what it leaves.",
            "2. Call generate_video once with the photo as image_url"
            + (" and my words as prompt." if motion and motion.strip() else ".")
            + " Do not call it again for the same photo: a job that is not finished is not lost.",
            "3. While the job is queued or processing, call get_video_result with its id and a wait_seconds, "
            "and tell me its progress, until it has succeeded or failed.",
            f"4. When it has succeeded: {keep} If it failed, tell me why and that its credits are spent.",
        ]
    )
