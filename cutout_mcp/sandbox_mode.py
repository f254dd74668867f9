"""Wiring the MCP server to an in-process sandbox (`cutout-mcp --sandbox`).

The sandbox package knows nothing of MCP, and the server knows nothing of
the sandbox; this module is the one place that joins them: it points the
settings at the sandbox and declares sandbox mode (which trusts the sandbox's
own plain-HTTP image URLs, and no other loopback URL), and tells the
assistant where a sample image is. A standalone sandbox (`cutout-mcp
sandbox`) is declared with CUTOUT_SANDBOX=1 and CUTOUT_BASE_URL; the same
instructions and resource then point at it.
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

from cutout_mcp.config import Settings

if TYPE_CHECKING:
    from cutout_mcp.clock import Clock
    from cutout_mcp.sandbox.config import SandboxConfig
    from cutout_mcp.sandbox.runner import Sandbox
    from cutout_mcp.sandbox.store import SandboxStore

SANDBOX_RESOURCE = "cutout://sandbox"
SAMPLE_IMAGE_PATH = "/samples/photo.jpg"


def add_sandbox_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The sandbox's knobs, shared by `--sandbox` and the `sandbox` command.

    Unset knobs stay None and take `SandboxConfig`'s defaults in `sandbox_config`, so that parsing the
    arguments of a plain `cutout-mcp` does not import the sandbox package (start-up time).
    """
    parser.add_argument("--job-seconds", type=float, help="render time of a video job")
    parser.add_argument("--queue-seconds", type=float, help="time the queue ahead of a job takes")
    parser.add_argument("--queue-depth", type=int, help="jobs ahead of a new job")
    parser.add_argument("--latency", type=float, help="seconds added to every API answer")
    parser.add_argument("--balance", type=int, help="starting credits")
    parser.add_argument("--video-format", choices=["auto", "mp4", "gif"], help="video container")


_KNOBS = ("job_seconds", "queue_seconds", "queue_depth", "latency", "balance", "video_format")


def sandbox_config(args: argparse.Namespace, *, port: int = 0) -> SandboxConfig:
    from cutout_mcp.sandbox.config import SandboxConfig

    given = {knob: getattr(args, knob) for knob in _KNOBS if getattr(args, knob, None) is not None}
    return SandboxConfig(port=port, **given)


def sandbox_settings(settings: Settings, sandbox: Sandbox) -> Settings:
    """`settings` pointed at the running sandbox in sandbox mode (its image URLs trusted), with its key.

    Sandbox jobs die with the sandbox, so they get a throwaway ledger (removed at exit) instead of
    the user's real one (never a shared CUTOUT_DATABASE_URL), and sandbox credits are not counted
    against a real budget.
    """
    state_dir = Path(tempfile.mkdtemp(prefix="cutout-sandbox-state-"))
    atexit.register(shutil.rmtree, state_dir, ignore_errors=True)
    return settings.model_copy(
        update={
            "api_key": SecretStr(sandbox.api_key),
            "base_url": sandbox.base_url,
            "sandbox": True,
            "state_dir": state_dir,
            "database_url": None,
            "credit_budget": None,
        }
    )


def sandbox_store(settings: Settings, clock: Clock | None = None) -> SandboxStore:
    """Where sandbox mode stages local files, data: URIs and uploads: the sandbox's own origin (no bucket).

    `clock` is the sandbox's (in-process), so the presigned URLs' expiry is read on the same clock."""
    from cutout_mcp.sandbox.store import SandboxStore

    key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    return SandboxStore(settings.base_url, key, clock=clock)


def sample_image_url(base_url: str) -> str:
    return base_url.rstrip("/") + SAMPLE_IMAGE_PATH


def sandbox_instructions(base_url: str, *, bucket: bool = False) -> str:
    """What the assistant reads in sandbox mode. The sample URL stands on a line of its own, with no
    punctuation touching it, so a chat renderer's auto-link and a whitespace split both get it exactly."""
    staged = "in the staging bucket" if bucket else "on the sandbox"
    return (
        "\nSANDBOX MODE: calls go to a local cutout.pro sandbox; no credits are spent. "
        f"Local files and data: URIs work too (staged {staged}). "
        "Put 'sandbox:inappropriate', 'sandbox:abnormal', "
        "'sandbox:no-balance' or 'sandbox:job-fails' in a prompt to see each failure. A sample image to use:\n"
        f"{sample_image_url(base_url)}\n"
    )


def attach_sandbox(server: MCPServer[object], base_url: str) -> None:
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
                "base_url": base_url,
                "sample_image_url": sample_image_url(base_url),
                "stats_url": base_url.rstrip("/") + "/__sandbox__/stats",
            }
        )
