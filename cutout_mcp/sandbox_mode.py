"""Wiring the MCP server to an in-process sandbox (`cutout-mcp --sandbox`).

The sandbox package knows nothing of MCP, and the server knows nothing of
the sandbox; this module is the one place that joins them: it points the
settings at the sandbox, trusts the sandbox's own plain-HTTP image URLs (and
no other loopback URL), and tells the assistant where a sample image is.
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from mcp.server.mcpserver import MCPServer
from pydantic import SecretStr

from .config import Settings
from .sandbox.config import SandboxConfig

if TYPE_CHECKING:
    from .sandbox.runner import Sandbox

SANDBOX_RESOURCE = "cutout://sandbox"
SAMPLE_IMAGE_PATH = "/samples/photo.jpg"


def add_sandbox_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The sandbox's knobs, shared by `--sandbox` and the `sandbox` command."""
    defaults = SandboxConfig()
    parser.add_argument("--job-seconds", type=float, default=defaults.job_seconds, help="render time of a video job")
    parser.add_argument(
        "--queue-seconds", type=float, default=defaults.queue_seconds, help="time the queue ahead of a job takes"
    )
    parser.add_argument("--queue-depth", type=int, default=defaults.queue_depth, help="jobs ahead of a new job")
    parser.add_argument("--latency", type=float, default=defaults.latency, help="seconds added to every API answer")
    parser.add_argument("--balance", type=int, default=defaults.balance, help="starting credits")
    parser.add_argument(
        "--video-format", choices=["auto", "mp4", "gif"], default=defaults.video_format, help="video container"
    )


def sandbox_config(args: argparse.Namespace, *, port: int = 0) -> SandboxConfig:
    return SandboxConfig(
        port=port,
        job_seconds=args.job_seconds,
        queue_seconds=args.queue_seconds,
        queue_depth=args.queue_depth,
        latency=args.latency,
        balance=args.balance,
        video_format=args.video_format,
    )


def sandbox_settings(settings: Settings, sandbox: Sandbox) -> Settings:
    """`settings` pointed at the running sandbox, with its key and its image URLs trusted.

    Sandbox jobs die with the sandbox, so they get a throwaway ledger (removed at exit) instead of
    the user's real one, and sandbox credits are not counted against a real budget.
    """
    state_dir = Path(tempfile.mkdtemp(prefix="cutout-sandbox-state-"))
    atexit.register(shutil.rmtree, state_dir, ignore_errors=True)
    return settings.model_copy(
        update={
            "api_key": SecretStr(sandbox.api_key),
            "base_url": sandbox.base_url,
            "trusted_image_origins": (sandbox.base_url,),
            "state_dir": state_dir,
            "credit_budget": None,
        }
    )


def sandbox_instructions(sandbox: Sandbox) -> str:
    return (
        "\nSANDBOX MODE: calls go to a local cutout.pro sandbox; no credits are spent. A sample image to "
        f"use: {sandbox.url(SAMPLE_IMAGE_PATH)}. Put 'sandbox:inappropriate', 'sandbox:abnormal', "
        "'sandbox:no-balance' or 'sandbox:job-fails' in a prompt to see each failure."
    )


def attach_sandbox(server: MCPServer[object], sandbox: Sandbox) -> None:
    """Publish the sandbox's address and sample image as a resource."""

    @server.resource(
        SANDBOX_RESOURCE,
        name="sandbox",
        title="Local cutout.pro sandbox",
        description="Where the sandbox listens and a sample image URL to try the tools with.",
        mime_type="application/json",
    )
    def sandbox_info() -> str:
        return json.dumps(
            {
                "base_url": sandbox.base_url,
                "sample_image_url": sandbox.url(SAMPLE_IMAGE_PATH),
                "stats_url": sandbox.url("/__sandbox__/stats"),
            }
        )
