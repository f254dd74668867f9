"""The upstream response envelope and the error codes the sandbox answers with.

Codes 9011, 1001 and 4002 and their messages are copied from the upstream
documents. 4001 (bad parameters) and 401 (bad API key) are the sandbox's own
choice because upstream documents no code for those cases.
"""

from __future__ import annotations

import secrets
from typing import Any

from cutout_mcp.clock import Clock

SUCCESS = 0

VIDEO_RUNNING, VIDEO_SUCCEEDED, VIDEO_FAILED = 0, 1, 2
"""Video job `status`: 0 queued or generating, 1 done, 2 failed."""
EDIT_SUCCEEDED, EDIT_FAILED = 1, 0
"""Edit `status`: 1 done, 0 failed (then `failReason` says why)."""

INAPPROPRIATE = 9011
INAPPROPRIATE_MSG = "Image contains inappropriate content, cannot be processed."

ABNORMAL = 1001
ABNORMAL_MSG = "The server is abnormal. Please contact us."

INSUFFICIENT_BALANCE = 1001
INSUFFICIENT_BALANCE_MSG = "Insufficient balance"

NOT_FOUND = 4002
NOT_FOUND_MSG = "No results were found for the current ID. Please check if the ID input is incorrect."

INVALID_PARAMETER = 4001
INVALID_KEY = 401
INVALID_KEY_MSG = "The API key is invalid. Check the APIKEY header."

EDIT_FAILED_MSG = "Image generation failed, please try again later."


class ApiError(Exception):
    """An answer in the upstream error shape: envelope with `data: null`."""

    def __init__(self, code: int, msg: str, http_status: int = 200) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.http_status = http_status


def invalid(detail: str) -> ApiError:
    return ApiError(INVALID_PARAMETER, f"Invalid parameter: {detail}")


def request_id() -> str:
    """32 hex characters, like upstream's `requestId`."""
    return secrets.token_hex(16)


def envelope(code: int, data: Any, msg: str | None, time_ms: int) -> dict[str, Any]:
    return {"code": code, "data": data, "msg": msg, "time": time_ms, "requestId": request_id()}


def now_ms(clock: Clock) -> int:
    """The API's timestamps are integer milliseconds."""
    return int(clock.now() * 1000)
