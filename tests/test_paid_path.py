"""Every paid call goes through the one paid-call path, and the tool bodies run without an MCP client."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import respx

from cutout_mcp.config import Settings
from cutout_mcp.core import edits
from cutout_mcp.core.context import open_context
from cutout_mcp.core.jobs import videos

from .conftest import FAST_RETRY, FakeClock, envelope
from .test_tools import EDIT, GENERATE, IMAGE, JOB_ID, RESULT, edit_answer

PACKAGE = Path(__file__).resolve().parent.parent / "cutout_mcp"
PAID_ENDPOINTS = {"submit_video", "edit_image"}
"""The CutoutClient methods that spend credits."""


def test_the_paid_endpoints_are_called_only_inside_the_paid_call_path() -> None:
    for path in PACKAGE.rglob("*.py"):
        if "sandbox" in path.parts or path.name == "client.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inside_paid_call: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "call":
                owner = node.func.value
                if isinstance(owner, ast.Attribute) and owner.attr == "paid":
                    inside_paid_call |= {id(n) for arg in node.args for n in ast.walk(arg)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in PAID_ENDPOINTS
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "client"
            ):
                assert id(node) in inside_paid_call, f"{path.name}:{node.lineno} pays outside PaidCalls.call"


@pytest.mark.anyio
async def test_the_tool_bodies_run_without_an_mcp_client(settings: Settings, upstream: respx.MockRouter) -> None:
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).respond(
        json=envelope({"id": JOB_ID, "status": 1, "resultUrl": "https://cdn.example.com/v.mp4"})
    )
    edit = upstream.post(EDIT).respond(json=edit_answer())
    async with open_context(settings, clock=FakeClock(), retry=FAST_RETRY) as app:
        video_plan = await videos.plan_video(app, "alice", IMAGE, "blink")
        video = await videos.generate_video(app, "alice", video_plan, wait_seconds=30)
        edit_plan = await edits.plan_edit(app, "alice", "make it blue", [IMAGE], "gpt-image-1")
        edited = await edits.edit_image(app, "alice", edit_plan)
        listed = await videos.list_video_jobs(app, "alice")
        other = await videos.list_video_jobs(app, "bob")
    assert (video.result.status, video.result.credits_charged) == ("succeeded", 5)
    assert (edited.result.image_url, edited.result.credits_charged) == ("https://cdn.example.com/edit.jpg", 4)
    assert edit.call_count == 1
    assert [job.id for job in listed.jobs] == [JOB_ID]
    assert listed.credits.spent == 9
    assert other.jobs == []
