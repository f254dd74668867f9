"""Wiring the MCP server to an in-process sandbox (`cutout-mcp --sandbox`).

The sandbox package knows nothing of MCP, and the server knows nothing of
the sandbox; this module is the one place that joins them: it points the
settings at the sandbox and declares sandbox mode (which trusts the sandbox's
own plain-HTTP image URLs, and no other loopback URL), and tells the
assistant where a sample image is. A standalone sandbox (`cutout-mcp
sandbox`) is declared with CUTOUT_SANDBOX=1 and CUTOUT_BASE_URL; the same
instructions and resource then point at it, and the same rule decides which
settings are kept (`sandbox_ledger`: the ledger, budget and bucket set are
used; only an in-process sandbox's real API key is set aside), which the
server states in one line at start (`sandbox_announcement`).
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import tempfile
from collections.abc import Sequence
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
THROWAWAY_PREFIX = "cutout-sandbox-state-"
"""The folder name a throwaway sandbox ledger starts with (`sandbox_ledger`)."""


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
    """`settings` pointed at the in-process sandbox in sandbox mode (its image URLs trusted), with its key.

    The configured CUTOUT_API_KEY is set aside (the sandbox takes only its own key, and a real key is never
    sent to it); every other setting is kept, as a standalone sandbox keeps it (`sandbox_ledger`).
    """
    pointed = settings.model_copy(
        update={"api_key": SecretStr(sandbox.api_key), "base_url": sandbox.base_url, "sandbox": True}
    )
    return sandbox_ledger(pointed)


def sandbox_ledger(settings: Settings) -> Settings:
    """The ledger a sandboxed server uses: the one the settings name, or else a throwaway one.

    One rule for both forms of sandbox mode: CUTOUT_DATABASE_URL, CUTOUT_STATE_DIR and CUTOUT_CREDIT_BUDGET
    are used as set (replicas against one standalone sandbox share jobs, dedupe, tasks and the budget as
    they would in production), and sandbox jobs and credits are recorded there like real ones. When no
    ledger is set, the default one in the user's state folder is not borrowed: sandbox jobs go to a
    throwaway ledger, removed at exit, and never show among the user's real jobs.
    """
    if settings.database_url is not None or "state_dir" in settings.model_fields_set:
        return settings
    state_dir = Path(tempfile.mkdtemp(prefix=THROWAWAY_PREFIX))
    atexit.register(shutil.rmtree, state_dir, ignore_errors=True)
    return settings.model_copy(update={"state_dir": state_dir})


def sandbox_announcement(settings: Settings, set_aside: Sequence[str] = ()) -> str:
    """The one start-up line of sandbox mode: where calls go, where its jobs and credits are recorded,
    where images are staged, and which settings it sets aside (only when it sets some aside)."""
    if settings.database_url is not None:
        from cutout_mcp.core.storage.postgres_url import describe

        ledger = f"the database CUTOUT_DATABASE_URL names ({describe(settings.database_url.get_secret_value())})"
    elif settings.state_dir.name.startswith(THROWAWAY_PREFIX):
        ledger = "a throwaway ledger (no CUTOUT_DATABASE_URL or CUTOUT_STATE_DIR is set)"
    else:
        ledger = f"the ledger in CUTOUT_STATE_DIR ({settings.state_dir})"
    if settings.credit_budget is not None:
        ledger += f", under CUTOUT_CREDIT_BUDGET={settings.credit_budget}"
    staged = "in the bucket CUTOUT_STAGING_URL names" if settings.staging_url else "on the sandbox"
    line = (
        f"Sandbox mode: cutout.pro calls go to the sandbox at {settings.base_url}; its jobs and credits are "
        f"recorded in {ledger}; local images are staged {staged}"
    )
    if set_aside:
        line += f"; set aside: {', '.join(set_aside)} (the sandbox takes only its own key)"
    return line


def set_aside_in_process(settings: Settings) -> tuple[str, ...]:
    """The settings an in-process sandbox replaces: the API key, when one is set."""
    return ("CUTOUT_API_KEY",) if settings.api_key is not None else ()


def sandbox_store(settings: Settings, clock: Clock | None = None) -> SandboxStore:
    """Where sandbox mode stages local files, data: URIs and uploads when no bucket is set: the sandbox's own
    origin (with CUTOUT_STAGING_URL set, the bucket is used, as without a sandbox).

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
