"""Settings for one sandbox instance.

Every field has a default so `SandboxConfig()` is a working sandbox; a CLI
maps its flags one-to-one onto these fields.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from cutout_mcp.clock import Clock, SystemClock

VideoFormat = Literal["auto", "mp4", "gif"]

DEFAULT_API_KEY = "sandbox-key"


@dataclass
class SandboxConfig:
    """Knobs of the sandbox. Durations are in seconds, money in credits."""

    api_key: str = DEFAULT_API_KEY
    """Value the `APIKEY` header must carry."""
    host: str = "127.0.0.1"
    """Interface to bind; only loopback addresses are accepted."""
    port: int = 0
    """0 picks a free ephemeral port."""
    queue_seconds: float = 2.0
    """How long a video job sits in the queue (status 0, percentage 0)."""
    queue_depth: int = 3
    """Other users' jobs a new video job starts behind; drains over `queue_seconds`."""
    job_seconds: float = 8.0
    """How long a video job then processes, percentage rising to 100."""
    latency: float = 0.0
    """Extra real delay added to every API request (not media, not control)."""
    edit_seconds: float = 0.0
    """Real time an image edit takes before it answers (upstream takes ~10 s)."""
    balance: int = 1_000_000
    """Starting credit balance; a call that costs more answers `Insufficient balance`."""
    user_id: int = 528874
    """`userId` reported on jobs and edits."""
    video_format: VideoFormat = "auto"
    """`auto` makes MP4 when PyAV is installed and an animated GIF otherwise."""
    fetch_remote: bool = True
    """Fetch source images over http(s); when off (or failing) a placeholder is drawn."""
    fetch_timeout: float = 5.0
    clock: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        if not is_loopback(self.host):
            raise ValueError(f"the sandbox binds loopback only, not {self.host!r}")
        for name in ("queue_seconds", "job_seconds", "latency", "edit_seconds", "fetch_timeout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.queue_depth < 0:
            raise ValueError("queue_depth must not be negative")
        if self.video_format not in ("auto", "mp4", "gif"):
            raise ValueError(f"video_format must be auto, mp4 or gif, not {self.video_format!r}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
