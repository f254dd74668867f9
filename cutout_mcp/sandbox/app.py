"""Routes of the stand-in API, the media it links to, and the sample image."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cutout_mcp.sandbox import control, staged, views
from cutout_mcp.sandbox.assets import media_url
from cutout_mcp.sandbox.envelope import (
    INVALID_KEY,
    INVALID_KEY_MSG,
    SUCCESS,
    VIDEO_SUCCEEDED,
    ApiError,
    envelope,
    invalid,
    now_ms,
)
from cutout_mcp.sandbox.middleware import SandboxMiddleware
from cutout_mcp.sandbox.paths import IMAGE_EDIT, SAMPLE_PHOTO, VIDEO_GENERATE, VIDEO_RESULT
from cutout_mcp.sandbox.state import SandboxState
from cutout_mcp.sandbox.validation import parse_edit, parse_job_id, parse_video

Handler = Callable[[Request, SandboxState], Awaitable[tuple[Any, str | None]]]


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler in upstream's conventions: APIKEY check, envelope, errors as envelopes."""

    async def endpoint(request: Request) -> Response:
        state = _state(request)
        if request.headers.get("APIKEY") != state.config.api_key:
            error = ApiError(INVALID_KEY, INVALID_KEY_MSG, http_status=401)
            return _error(state, error)
        try:
            data, msg = await handler(request, state)
        except ApiError as error:
            return _error(state, error)
        return JSONResponse(envelope(SUCCESS, data, msg, now_ms(state.clock)))

    return endpoint


def _error(state: SandboxState, error: ApiError) -> Response:
    body = envelope(error.code, None, error.msg, now_ms(state.clock))
    return JSONResponse(body, status_code=error.http_status)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except ValueError:
        raise invalid("the request body must be JSON.") from None


async def generate(request: Request, state: SandboxState) -> tuple[Any, str | None]:
    job = state.submit_video(parse_video(await _json_body(request)))
    await state.media.fetch_staged([job.image_url], _base_url(request))
    return job.id, None


async def get_result(request: Request, state: SandboxState) -> tuple[Any, str | None]:
    job = state.job(parse_job_id(request.query_params.get("id")))
    progress = state.progress(job)
    result = None
    if progress.status == VIDEO_SUCCEEDED:
        base = _base_url(request)
        width, height = await state.media.video_size(job, base)
        result = views.VideoResult(
            result_url=media_url(base, "video", job.id, state.video_ext),
            cover_url=media_url(base, "cover", job.id, "jpg"),
            width=width,
            height=height,
        )
    return views.video_job(job, progress, state.config.user_id, result), ""


async def image_edit(request: Request, state: SandboxState) -> tuple[Any, str | None]:
    started = time.perf_counter()
    record = state.submit_edit(parse_edit(await _json_body(request)))
    await state.media.fetch_staged(record.image_urls, _base_url(request))
    if state.config.edit_seconds > 0:
        await anyio.sleep(state.config.edit_seconds)
    record.duration = f"{time.perf_counter() - started:.2f}"
    image_url = None if record.failed else media_url(_base_url(request), "edit", record.id, "jpg")
    return views.edit(record, state.config.user_id, image_url), ""


async def media_file(request: Request) -> Response:
    """Sample image and generated media; public like a CDN, so no APIKEY."""
    found = await _state(request).media.file(request.url.path, _base_url(request))
    if found is None:
        return Response("Not Found", status_code=404, media_type="text/plain")
    return Response(found.body, media_type=found.content_type, headers={"Cache-Control": "max-age=3600"})


def create_app(state: SandboxState | None = None) -> Starlette:
    """The sandbox as an ASGI app; pass a `SandboxState` to inspect or steer it from the test."""
    state = state if state is not None else SandboxState()
    routes = [
        Route(VIDEO_GENERATE, api(generate), methods=["POST"]),
        Route(VIDEO_RESULT, api(get_result), methods=["GET"]),
        Route(IMAGE_EDIT, api(image_edit), methods=["POST"]),
        Route(SAMPLE_PHOTO, media_file, methods=["GET"]),
        Route("/media/{kind}/{name}", media_file, methods=["GET"]),
        *control.routes(),
        *staged.routes(),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SandboxMiddleware, state=state)])
    app.state.sandbox = state
    return app
