"""A minimal loopback stand-in for cutout.pro's edit endpoint, for the call-overhead benchmark.

`POST /api/v1/image/edit` answers at once with upstream's envelope and a fresh edit id, and its
`imageUrl` points at `GET /result/<id>.jpg`, which serves one real 1024x576 JPEG (a photo-like
picture, about the size of an edit result) from memory; `GET /samples/photo.jpg` serves it too, as
an input image. The sandbox draws every edit's result on
first fetch, which would put tens of milliseconds of the benchmark process's own CPU into every
previewed call; here the upstream's cost is the same small constant for every server compared.

    async with run_edit_upstream() as upstream: upstream.base_url, upstream.requests
"""

from __future__ import annotations

import contextlib
import io
import itertools
import socket
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_KEY = "bench-key"
EDIT_PATH = "/api/v1/image/edit"
SAMPLE_PATH = "/samples/photo.jpg"
"""The same JPEG, as an input image for a pre-flight check to fetch."""
RESULT_SIZE = (1024, 576)


def result_jpeg() -> bytes:
    """A 1024x576 JPEG with photo-like detail (gradients and noise), about 100-200 KB."""
    from PIL import Image, ImageDraw, ImageFilter

    w, h = RESULT_SIZE
    image = Image.effect_noise((w, h), 40).convert("RGB")
    overlay = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(overlay)
    for y in range(h):
        t = y / h
        draw.line([(0, y), (w, y)], fill=(int(40 + 160 * t), int(110 + 90 * t), int(200 - 80 * t)))
    draw.ellipse((620, 80, 780, 240), fill=(255, 226, 120))
    image = Image.blend(overlay, image.filter(ImageFilter.GaussianBlur(1)), 0.25)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


@dataclass
class EditUpstream:
    base_url: str
    jpeg: bytes
    requests: Counter[str] = field(default_factory=Counter)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the benchmark keeps its own Ctrl-C handling
        yield


@contextlib.asynccontextmanager
async def run_edit_upstream() -> AsyncIterator[EditUpstream]:
    """Serve the stand-in on 127.0.0.1 for the duration of the block."""
    jpeg = await anyio.to_thread.run_sync(result_jpeg)
    # IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted sockets (no 40 ms delayed-ACK stalls)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    upstream = EditUpstream(f"http://127.0.0.1:{sock.getsockname()[1]}", jpeg)
    ids = itertools.count(700_000_000_000_001)

    async def edit(request: Request) -> Response:
        upstream.requests[EDIT_PATH] += 1
        if request.headers.get("APIKEY") != API_KEY:
            return JSONResponse({"code": 401, "data": None, "msg": "The API key is invalid."}, status_code=401)
        body = await request.json()
        edit_id = next(ids)
        data = {
            "id": edit_id,
            "userId": 1,
            "imageUrl": f"{upstream.base_url}/result/{edit_id}.jpg",
            "prompt": body.get("prompt"),
            "model": body.get("model"),
            "aspectRatios": body.get("aspectRatios"),
            "referenceImageUrl": body.get("imageUrl", []),
            "status": 1,
            "duration": 0.1,
            "createdAt": 1763547221159,
        }
        return JSONResponse({"code": 0, "data": data, "msg": None, "time": 1763547221159, "requestId": "bench"})

    async def result(request: Request) -> Response:
        upstream.requests["/result"] += 1
        return Response(jpeg, media_type="image/jpeg")

    routes = [Route(EDIT_PATH, edit, methods=["POST"]), Route("/result/{name}", result), Route(SAMPLE_PATH, result)]
    app = Starlette(routes=routes)
    server = _Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", ws="none"))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(30):
                while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for this
                    await anyio.sleep(0.005)
            try:
                yield upstream
            finally:
                server.should_exit = True
    finally:
        sock.close()
