"""ASGI layer that counts requests, adds latency and applies queued faults.

It sits outside the routes so a fault can replace the answer of a request that
the routes already processed (and charged), which is what a lost response
looks like from the client's side.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cutout_mcp.sandbox.faults import Fault, InjectedDisconnect
from cutout_mcp.sandbox.paths import API_PATHS, CONTROL_PREFIX

if TYPE_CHECKING:
    from cutout_mcp.sandbox.state import SandboxState

GATEWAY_HTML = (
    "<html>\r\n<head><title>{status} Service Temporarily Unavailable</title></head>\r\n"
    "<body>\r\n<center><h1>{status} Service Temporarily Unavailable</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
MALFORMED_BODY = '{"code":0,"data":'
TRUNCATED_EXTRA_BYTES = 4096


class SandboxMiddleware:
    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        self.state.count_request(path)
        if path in API_PATHS and self.state.config.latency > 0:
            await anyio.sleep(self.state.config.latency)
        fault = self.state.faults.take(path)
        if fault is None:
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        if not fault.fires_after(method):
            self.state.log_fault(fault, path, method, after=False, charged_id=None)
            if fault.kind == "slow":
                await anyio.sleep(fault.delay)
                await self.app(scope, receive, send)
            else:
                await _emit(fault, send, None)
            return
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        self.state.log_fault(fault, path, method, after=True, charged_id=_charged_id(path, captured))
        if fault.kind == "slow":
            await anyio.sleep(fault.delay)
            for message in captured:
                await send(message)
        else:
            await _emit(fault, send, captured)


def _charged_id(path: str, captured: list[Message]) -> int | None:
    """The job or edit id a processed POST created (and charged), read from the answer the fault replaces."""
    if path not in API_PATHS or not any(m["type"] == "http.response.start" and m["status"] == 200 for m in captured):
        return None
    try:
        body = json.loads(_captured_body(captured))
    except ValueError:
        return None
    data = body.get("data") if isinstance(body, dict) and body.get("code") == 0 else None
    if isinstance(data, dict):
        data = data.get("id")
    return data if isinstance(data, int) and not isinstance(data, bool) else None


def _captured_body(captured: list[Message] | None) -> bytes:
    if not captured:
        return b""
    return b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")


async def _emit(fault: Fault, send: Send, captured: list[Message] | None) -> None:
    if fault.kind == "http_error":
        body = (fault.body or GATEWAY_HTML.format(status=fault.status)).encode()
        await _respond(send, fault.status, "text/html", body)
    elif fault.kind == "malformed":
        await _respond(send, 200, "application/json", (fault.body or MALFORMED_BODY).encode())
    else:  # disconnect
        full = _captured_body(captured) or b'{"code":0,"data":null,"msg":null}'
        announced = len(full) + TRUNCATED_EXTRA_BYTES
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(announced).encode())],
            }
        )
        await send({"type": "http.response.body", "body": full[: len(full) // 2], "more_body": True})
        raise InjectedDisconnect(
            f"sandbox dropped the connection after {len(full) // 2} of {announced} bytes (injected fault)"
        )


async def _respond(send: Send, status: int, content_type: str, body: bytes) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
