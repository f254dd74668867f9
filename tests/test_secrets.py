"""The API key never leaves the request header: not in results, errors, logs or anything printed.

One session drives every tool through success and every failure path with
all loggers at DEBUG, including upstream answers that echo the key back, then
scans everything returned, logged and written to stdout/stderr.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from cutout_mcp.config import Settings
from cutout_mcp.logs import configure_logging

from .conftest import API_KEY, FakeClock, connect, envelope, video_job

pytestmark = pytest.mark.anyio

GENERATE = "/api/v2/imageToVideo/generate"
RESULT = "/api/v2/imageToVideo/getResult"
EDIT = "/api/v1/image/edit"
IMAGE = "https://img.example.com/cat.jpg"


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout(f"timed out talking to {request.url}", request=request)


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def edit_ok() -> dict[str, Any]:
    return envelope(
        {
            "id": 1,
            "imageUrl": "https://cdn.example.com/e.jpg",
            "model": "gpt-image-1",
            "aspectRatios": "1:1",
            "status": 1,
            "referenceImageUrl": [IMAGE],
            "createdAt": 1763547221159,
        }
    )


ECHO = f"bad key {API_KEY}"
ANSWERS: list[httpx.Response | Callable[[httpx.Request], httpx.Response]] = [
    httpx.Response(401, json=envelope(None, code=401, msg=ECHO)),
    httpx.Response(403, text=f"<html>forbidden for {API_KEY}</html>"),
    httpx.Response(429, headers={"Retry-After": "1"}, json=envelope(None, code=429, msg=ECHO)),
    httpx.Response(500, text=ECHO),
    httpx.Response(502, text="bad gateway"),
    httpx.Response(200, text=f"not json {API_KEY}"),
    httpx.Response(200, json=envelope(None, code=9011, msg=ECHO)),
    httpx.Response(200, json=envelope(None, code=1001, msg=ECHO)),
    httpx.Response(200, json=envelope(None, code=4002, msg=ECHO)),
    httpx.Response(200, json=envelope(None, code=7777, msg=ECHO)),
    httpx.Response(200, json={"code": 0, "data": {"unexpected": API_KEY}}),
    httpx.Response(200, json=envelope(None, code=1, msg=f"Insufficient balance ({API_KEY})")),
    timeout,
    refused,
]


async def test_the_key_appears_nowhere_in_a_full_session(
    settings: Settings,
    clock: FakeClock,
    upstream: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    configure_logging(settings.model_copy(update={"log_level": "DEBUG"}))  # the server's own stderr handler
    # caplog sees every record before any redaction (levels are set once the server is built).
    seen: list[str] = []

    def record(result: Any) -> None:
        seen.append(json.dumps(result.model_dump(mode="json", by_alias=True), default=str))

    failing: list[httpx.Response | Callable[[httpx.Request], httpx.Response]] = []
    polls = iter((0, 0))

    def answer(success: Callable[[], httpx.Response]) -> Callable[[httpx.Request], httpx.Response]:
        def respond(request: httpx.Request) -> httpx.Response:
            if not failing:
                return success()
            current = failing[-1]
            return current(request) if callable(current) else current

        return respond

    upstream.post(GENERATE).mock(side_effect=answer(lambda: httpx.Response(200, json=envelope(700842286474565))))
    upstream.get(RESULT).mock(
        side_effect=answer(lambda: httpx.Response(200, json=envelope(video_job(status=next(polls, 1)))))
    )
    upstream.post(EDIT).mock(side_effect=answer(lambda: httpx.Response(200, json=edit_ok())))
    upstream.route(host="cdn.example.com").respond(404)  # result downloads, if switched on

    async with connect(settings, "auto", clock) as client:
        # After the server and the SDK set up logging (which replaces the root's handlers):
        logging.getLogger().addHandler(caplog.handler)
        for name in ("", "httpx", "httpcore", "mcp", "cutout_mcp"):
            caplog.set_level(logging.DEBUG, logger=name)
        # Success paths.
        record(await client.call_tool("generate_video", {"image_url": IMAGE, "prompt": "blink", "wait_seconds": 30}))
        record(await client.call_tool("get_video_result", {"id": 700842286474565}))
        record(await client.call_tool("edit_image", {"prompt": "blue", "image_urls": [IMAGE]}))

        # Every failure, on every endpoint.
        for failure in ANSWERS:
            failing.append(failure)
            record(await client.call_tool("generate_video", {"image_url": IMAGE, "force_new": True}))
            record(await client.call_tool("get_video_result", {"id": 42, "wait_seconds": 5}))
            record(await client.call_tool("edit_image", {"prompt": "blue", "image_urls": [IMAGE]}))

        # Bad arguments, too.
        record(await client.call_tool("generate_video", {"image_url": f"https://x.example/?k={API_KEY[:4]}"}))
        record(await client.call_tool("edit_image", {"prompt": "", "image_urls": []}))

    assert len(upstream.calls) > 40, "the session really exercised the upstream paths"
    errors = [s for s in seen if '"isError": true' in s]
    assert len(errors) >= 3 * len(ANSWERS), "every failure path produced a tool error"

    logged = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    assert any(r.levelname == "DEBUG" and r.name.startswith("cutout_mcp") for r in caplog.records)
    written = capfd.readouterr()
    outputs = {"results": seen, "log records": logged, "stdout": [written.out], "stderr": [written.err]}
    for where, texts in outputs.items():
        leaks = [t for t in texts if API_KEY in t]
        assert not leaks, f"the API key leaked into {where}: {leaks[0][:300]}"
