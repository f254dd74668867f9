"""The sandbox's object store: staged images on its own loopback origin, so sandbox mode needs no bucket.

`/staging/<key>` answers the four verbs an S3 bucket would for one object: PUT, GET, HEAD and DELETE.
Like a bucket, it takes two kinds of authorisation:

- the APIKEY header (the server's own `put`, `size`, `get` and `delete`, `sandbox.store.SandboxStore`);
- a presigned query, `?expires=<epoch s>&signature=<hex>`, where the signature is an HMAC-SHA256 under the
  API key of `METHOD\\nkey\\nexpires` (`sign`): what cutout.pro (here: the sandbox itself) fetches with,
  and what a `get_upload_url` client uploads with. A missing, wrong or expired signature is 403.

Objects live in memory (`SandboxState.staged`) and are capped at the APIs' 10 MB plus one byte, so a
too-large upload is kept just large enough to be refused by the server's check.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cutout_mcp import catalog
from cutout_mcp.sandbox.paths import STAGING_PREFIX

KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._\-/]{0,1023}$")
MAX_OBJECT_BYTES = catalog.MAX_IMAGE_BYTES + 1


def sign(api_key: str, method: str, key: str, expires: int) -> str:
    message = f"{method}\n{key}\n{expires}".encode()
    return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()


def _allowed(request: Request, method: str, key: str) -> bool:
    state = request.app.state.sandbox
    api_key: str = state.config.api_key
    if hmac.compare_digest(request.headers.get("APIKEY", ""), api_key):
        return True
    expires, signature = request.query_params.get("expires", ""), request.query_params.get("signature", "")
    if not expires.isdigit() or int(expires) < state.clock.now():
        return False
    return hmac.compare_digest(signature, sign(api_key, method, key, int(expires)))


async def _object(request: Request) -> Response:
    key: str = request.path_params["key"]
    method = request.method
    if not KEY.match(key) or ".." in key.split("/"):
        return Response("Bad key", status_code=400, media_type="text/plain")
    if not _allowed(request, "GET" if method == "HEAD" else method, key):
        return Response("Forbidden: missing, wrong or expired signature", status_code=403, media_type="text/plain")
    staged: dict[str, tuple[bytes, str]] = request.app.state.sandbox.staged
    if method == "PUT":
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_OBJECT_BYTES:
                break
        staged[key] = (bytes(body[:MAX_OBJECT_BYTES]), request.headers.get("content-type", "application/octet-stream"))
        return Response(status_code=200)
    if method == "DELETE":
        staged.pop(key, None)
        return Response(status_code=204)
    found = staged.get(key)
    if found is None:
        return Response("Not Found", status_code=404, media_type="text/plain")
    data, content_type = found
    headers = {"Content-Length": str(len(data))}
    return Response(b"" if method == "HEAD" else data, media_type=content_type, headers=headers)


def routes() -> list[Route]:
    return [Route(STAGING_PREFIX + "{key:path}", _object, methods=["GET", "HEAD", "PUT", "DELETE"])]
