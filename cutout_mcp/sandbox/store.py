"""`SandboxStore`: the server's object store when it runs against a sandbox (no bucket needed).

It implements the staging protocol (`cutout_mcp.core.staging.ObjectStore`) structurally: the sandbox
shares only the base modules with the server, and `sandbox_mode` joins the two. Every operation is a
real HTTP request to the sandbox's `/staging/<key>` (`sandbox.staged`): the server's own operations carry
the APIKEY header, the URLs it hands out carry a presigned query, so sandbox mode exercises the same
round trip as a bucket, standalone sandbox included.
"""

from __future__ import annotations

import math
from types import TracebackType
from urllib.parse import quote, urlencode, urlsplit

import httpx

from cutout_mcp.clock import Clock, SystemClock
from cutout_mcp.errors import CutoutMcpError
from cutout_mcp.sandbox.paths import STAGING_PREFIX
from cutout_mcp.sandbox.staged import sign

DEFAULT_TTL_SECONDS = 86400.0


class SandboxStoreError(CutoutMcpError):
    """The sandbox's object store could not be used (names the operation, never a signature)."""


class SandboxStore:
    """Staged objects on a sandbox's loopback origin, over HTTP."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._api_key = api_key
        self._ttl = ttl_seconds
        self._clock = clock or SystemClock()
        self._http = httpx.AsyncClient(transport=transport, timeout=30.0, trust_env=False, headers={"APIKEY": api_key})

    @property
    def origin(self) -> str:
        return self._origin

    async def __aenter__(self) -> SandboxStore:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _url(self, key: str) -> str:
        return f"{self._origin}{STAGING_PREFIX}{quote(key, safe='/')}"

    async def _send(self, method: str, key: str, **kwargs: object) -> httpx.Response:
        try:
            response = await self._http.request(method, self._url(key), **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise SandboxStoreError(
                f"The sandbox's object store did not answer a {method} ({type(exc).__name__})."
            ) from exc
        if response.status_code >= 400 and response.status_code != 404:
            raise SandboxStoreError(f"The sandbox's object store answered a {method} with HTTP {response.status_code}.")
        return response

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self._send("PUT", key, content=data, headers={"Content-Type": content_type})

    async def size(self, key: str) -> int | None:
        response = await self._send("HEAD", key)
        if response.status_code == 404:
            return None
        return int(response.headers.get("content-length", "0"))

    async def get(self, key: str, max_bytes: int) -> bytes:
        body = bytearray()
        try:
            async with self._http.stream("GET", self._url(key)) as response:
                if response.status_code != 200:
                    raise SandboxStoreError(
                        f"The sandbox's object store answered a GET with HTTP {response.status_code}."
                    )
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        break
        except httpx.HTTPError as exc:
            raise SandboxStoreError(f"The sandbox's object store did not answer a GET ({type(exc).__name__}).") from exc
        return bytes(body[: max_bytes + 1])

    def _signed(self, method: str, key: str, seconds: float) -> str:
        expires = math.ceil(self._clock.now() + seconds)
        query = urlencode({"expires": expires, "signature": sign(self._api_key, method, key, expires)})
        return f"{self._url(key)}?{query}"

    async def signed_get_url(self, key: str) -> str:
        return self._signed("GET", key, self._ttl)

    async def signed_put_url(self, key: str, content_type: str, expires_in_seconds: float) -> str:
        return self._signed("PUT", key, expires_in_seconds)

    async def delete(self, key: str) -> None:
        await self._send("DELETE", key)
