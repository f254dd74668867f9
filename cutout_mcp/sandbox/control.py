"""The `/__sandbox__/` control surface: stats, faults, clock and reset.

It needs no APIKEY and is never subject to faults or latency, so a test can
always inspect and steer the sandbox.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cutout_mcp.clock import ManualClock
from cutout_mcp.sandbox import views
from cutout_mcp.sandbox.envelope import now_ms
from cutout_mcp.sandbox.faults import Fault
from cutout_mcp.sandbox.paths import CONTROL_PREFIX
from cutout_mcp.sandbox.state import SandboxState


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _problem(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    return json.loads(raw)


async def stats(request: Request) -> JSONResponse:
    return JSONResponse(views.stats(_state(request)))


async def add_faults(request: Request) -> JSONResponse:
    """Body: one fault object or a list of them (see `Fault`)."""
    state = _state(request)
    try:
        body = await _body(request)
        items = body if isinstance(body, list) else [body]
        faults = [Fault.from_json(item) for item in items]
    except ValueError as error:
        return _problem(str(error))
    for fault in faults:
        state.faults.add(fault)
    return JSONResponse({"pending": [f.to_json() for f in state.faults.pending]})


async def clear_faults(request: Request) -> JSONResponse:
    _state(request).faults.clear()
    return JSONResponse({"pending": []})


async def advance_clock(request: Request) -> JSONResponse:
    """Body `{"seconds": n}`; only when the sandbox runs on a `ManualClock`."""
    state = _state(request)
    if not isinstance(state.clock, ManualClock):
        return _problem("the sandbox uses the system clock; start it with a ManualClock to advance time", 409)
    try:
        seconds = float((await _body(request)).get("seconds"))
        state.clock.advance(seconds)
    except (ValueError, TypeError, AttributeError):
        return _problem('body must be {"seconds": <non-negative number>}')
    return JSONResponse({"now": now_ms(state.clock)})


async def reset(request: Request) -> JSONResponse:
    """Body optional: `{"balance": n}` starts from that balance instead of the configured one."""
    state = _state(request)
    try:
        body = await _body(request)
        balance = body.get("balance") if isinstance(body, dict) else None
        if balance is not None and (not isinstance(balance, int) or isinstance(balance, bool) or balance < 0):
            raise ValueError("balance must be a non-negative integer")
    except ValueError as error:
        return _problem(str(error))
    state.reset(balance=balance)
    return JSONResponse(views.stats(state))


def routes() -> list[Route]:
    p = CONTROL_PREFIX
    return [
        Route(f"{p}stats", stats, methods=["GET"]),
        Route(f"{p}faults", add_faults, methods=["POST"]),
        Route(f"{p}faults", clear_faults, methods=["DELETE"]),
        Route(f"{p}clock/advance", advance_clock, methods=["POST"]),
        Route(f"{p}reset", reset, methods=["POST"]),
    ]
