"""A stand-in cutout.pro on loopback for fault tests, and a port that records whether it was contacted.

Unlike the sandbox, every answer is scripted by the test: a finished job with hostile URLs, a 50 MB
answer that is not JSON, a submit that hangs until the test lets it go. It runs in the test process
(uvicorn on a free port), so the real `cutout-mcp` process talks to it over real sockets.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

GENERATE = "/api/v2/imageToVideo/generate"
RESULT = "/api/v2/imageToVideo/getResult"
EDIT = "/api/v1/image/edit"

Handler = Callable[[Request], Awaitable[Response]]


def envelope(data: Any) -> Response:
    body = {"code": 0, "data": data, "msg": None, "time": 1753241547143, "requestId": "req-standin"}
    return Response(json.dumps(body), media_type="application/json")


def finished_job(job_id: int, result_url: str, cover_url: str) -> dict[str, Any]:
    return {
        "id": job_id,
        "userId": 1,
        "imageUrl": "https://img.example.com/cat.jpg",
        "originalPrompt": "the cat blinks",
        "resultUrl": result_url,
        "cover": cover_url,
        "width": 1024,
        "height": 1024,
        "status": 1,
        "percentage": 100,
        "waitNumber": 0,
        "createdAt": 1753240476000,
    }


@dataclass
class StandIn:
    """The running stand-in: its URL, what it was asked, and the handlers a test replaces."""

    base_url: str = ""
    hits: Counter[str] = field(default_factory=Counter)
    handlers: dict[str, Handler] = field(default_factory=dict)


@asynccontextmanager
async def run_standin(handlers: dict[str, Handler]) -> AsyncIterator[StandIn]:
    standin = StandIn(handlers=handlers)

    async def dispatch(request: Request) -> Response:
        standin.hits[request.url.path] += 1
        handler = standin.handlers.get(request.url.path)
        if handler is None:
            return Response("not here", status_code=404)
        return await handler(request)

    paths = dict.fromkeys((GENERATE, RESULT, EDIT, *handlers))  # and any other path a test serves
    app = Starlette(routes=[Route(path, dispatch, methods=["GET", "POST"]) for path in paths])
    async with anyio.create_task_group() as tg, await anyio.create_tcp_listener(local_host="127.0.0.1") as probe:
        port = probe.extra(anyio.abc.SocketAttribute.local_port)
        await probe.aclose()
        server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
            )
        )
        tg.start_soon(server.serve)
        with anyio.fail_after(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
                await anyio.sleep(0.01)
        standin.base_url = f"http://127.0.0.1:{port}"
        try:
            yield standin
        finally:
            server.should_exit = True


@dataclass
class Recorder:
    """A loopback port that accepts connections and counts them (it never answers)."""

    port: int = 0
    contacted: int = 0


@asynccontextmanager
async def run_recorder() -> AsyncIterator[Recorder]:
    recorder = Recorder()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    recorder.port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def on_connect(stream: anyio.abc.SocketStream) -> None:
        recorder.contacted += 1
        await stream.aclose()

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, on_connect)
        try:
            yield recorder
        finally:
            tg.cancel_scope.cancel()
