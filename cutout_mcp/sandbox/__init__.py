"""A local stand-in for the cutout.pro HTTP API, like stripe-mock for Stripe.

It answers the three endpoints the MCP server uses with upstream's envelope
(`{code, data, msg, time, requestId}`), field names, id shapes and error
messages, charges credits from `cutout_mcp.catalog`, and serves real media:

- ``POST /api/v2/imageToVideo/generate`` ``{imageUrl, prompt?}`` -> ``data`` = 15-digit job id; 5 credits.
- ``GET /api/v2/imageToVideo/getResult?id=`` -> the job: status 0 while queued (``percentage`` 0,
  ``waitNumber`` counting down to 0) and while processing (``percentage`` rising), then 1 with
  ``resultUrl`` (MP4 when PyAV is installed, else animated GIF), ``cover`` (JPEG), ``width``/``height``
  of the video. ``resultUrl``, ``cover``, ``width`` and ``height`` are null until the job succeeds.
- ``POST /api/v1/image/edit`` ``{prompt, model, aspectRatios, imageUrl: [...]}`` -> the edit object
  (status 1, ``imageUrl`` = a JPEG in the requested ratio, tinted, prompt written on it); the
  model's credits. ``original`` keeps the first source image's aspect ratio.
- ``GET /samples/photo.jpg``: a 1024x768 JPEG, an input for demos without network.
- ``GET /media/video/<id>.mp4|.gif``, ``/media/cover/<id>.jpg``, ``/media/edit/<id>.jpg``: made on
  first request and cached. Sources are fetched over http(s) (10 MB cap, short timeout); URLs that
  point at the sandbox itself are served from memory; unreachable sources get a placeholder
  picture showing the prompt.

Answers the upstream documents do not pin down (sandbox choices):

- Missing or wrong ``APIKEY``: HTTP 401, ``code`` 401, ``msg`` "The API key is invalid. Check the
  APIKEY header."
- Bad parameters (missing prompt/imageUrl, unknown model, ratio not listed, more images than the
  model takes, non-http(s) URL, body not a JSON object): HTTP 200, ``code`` 4001,
  ``msg`` "Invalid parameter: <what is wrong>". Nothing is charged.
- ``getResult`` with a missing, non-numeric or out-of-range id: 4002, like an unknown id.
- Insufficient balance: 1001 "Insufficient balance" (as the edit document shows); nothing is charged.
- Image size limits (300-6000 px, seedream's rules) are not enforced.

Trigger tokens, anywhere in the prompt or an image URL (case-insensitive):

- ``sandbox:inappropriate``: submit answers 9011 "Image contains inappropriate content, cannot be
  processed."; not charged.
- ``sandbox:abnormal``: submit answers 1001 "The server is abnormal. Please contact us."; not charged.
- ``sandbox:no-balance``: submit answers 1001 "Insufficient balance"; not charged.
- ``sandbox:job-fails``: accepted and charged; the video job ends with status 2 halfway through
  processing (``percentage`` stays at 50); the edit answers status 0, ``imageUrl`` null and a
  ``failReason``.

Knobs (`SandboxConfig` fields): ``api_key`` ("sandbox-key"), ``host`` (loopback only), ``port``
(0 = ephemeral), ``queue_seconds`` (2), ``queue_depth`` (3 jobs of other users a new job starts
behind), ``job_seconds`` (8), ``latency`` (0, added to each API request), ``edit_seconds`` (0),
``balance`` (1,000,000 credits), ``user_id``, ``video_format`` (auto/mp4/gif), ``fetch_remote``,
``fetch_timeout``, ``clock`` (`ManualClock` for tests). ``waitNumber`` = jobs submitted earlier that
are still queued + the ``queue_depth`` backlog draining over ``queue_seconds``.

Control surface (no APIKEY, never faulted):

- ``GET /__sandbox__/stats`` -> ``{charges, credits_spent, balance, requests: {path: n}, jobs: [...],
  edits: [...], pending_faults: [...], faults_fired, clock, now, video_format}``.
- ``POST /__sandbox__/faults`` with a fault or a list of faults
  ``{kind: http_error|slow|malformed|disconnect, path?, count?, status?, delay?, after?, body?}``
  -> ``{pending: [...]}``; ``DELETE /__sandbox__/faults`` clears them.
- ``POST /__sandbox__/clock/advance`` ``{seconds}`` -> ``{now}`` (409 unless a `ManualClock` is used).
- ``POST /__sandbox__/reset`` ``{balance?}`` -> stats after forgetting jobs, edits, counts and faults.

Faults: each applies to the next ``count`` requests to ``path`` (exact, a prefix ending in ``*``,
or null for the three API endpoints). ``http_error`` answers ``status`` (503) with an HTML page;
``slow`` answers ``delay`` seconds late; ``malformed`` answers 200 with a non-JSON body;
``disconnect`` announces a longer Content-Length than it sends and drops the connection (clients
get ``httpx.RemoteProtocolError``). On POSTs faults fire by default *after* the request was
processed and charged (``after: false`` to fire before); on other methods before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cutout_mcp.clock import Clock, ManualClock, SystemClock
    from cutout_mcp.sandbox.app import create_app
    from cutout_mcp.sandbox.config import DEFAULT_API_KEY, SandboxConfig
    from cutout_mcp.sandbox.faults import Fault, Faults, InjectedDisconnect
    from cutout_mcp.sandbox.runner import Sandbox, run_sandbox, serve
    from cutout_mcp.sandbox.state import SandboxState
    from cutout_mcp.sandbox.triggers import Trigger

_HOMES = {
    "create_app": "app",
    "DEFAULT_API_KEY": "config",
    "SandboxConfig": "config",
    "Fault": "faults",
    "Faults": "faults",
    "InjectedDisconnect": "faults",
    "Sandbox": "runner",
    "run_sandbox": "runner",
    "serve": "runner",
    "SandboxState": "state",
    "Trigger": "triggers",
}


def __getattr__(name: str) -> Any:
    """Import on first use, so `cutout-mcp` without --sandbox never loads the web stack for it."""
    if name in _HOMES:
        return getattr(importlib.import_module(f"cutout_mcp.sandbox.{_HOMES[name]}"), name)
    if name in ("Clock", "ManualClock", "SystemClock"):  # the one clock, re-exported for sandbox users
        return getattr(importlib.import_module("cutout_mcp.clock"), name)
    raise AttributeError(f"module 'cutout_mcp.sandbox' has no attribute {name!r}")


__all__ = [
    "DEFAULT_API_KEY",
    "Clock",
    "Fault",
    "Faults",
    "InjectedDisconnect",
    "ManualClock",
    "Sandbox",
    "SandboxConfig",
    "SandboxState",
    "SystemClock",
    "Trigger",
    "create_app",
    "run_sandbox",
    "serve",
]
