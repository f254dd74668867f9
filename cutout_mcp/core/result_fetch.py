"""Fetching result files (videos, covers, edited images) over HTTP, capped in bytes.

One download client lives as long as the server (`Downloads` owns a `ResultFetcher`): building an
httpx client costs ~20 ms of CPU for its TLS context, more than everything else a previewed edit
does. It is not the API client, which sends the key with every request.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx

from cutout_mcp import __version__
from cutout_mcp.errors import CutoutMcpError
from cutout_mcp.upstream.tls import shared_ssl_context

DOWNLOAD_CONNECTIONS = 20
DOWNLOAD_KEEPALIVE_SECONDS = 1.5
"""Idle connections to result hosts are kept this long: consecutive results often come from one CDN host."""


class DownloadError(CutoutMcpError):
    """A copy could not be made; the message says why in a few words (never a URL's secrets)."""


class ResultFetcher:
    """Streams result files with one httpx client of its own (never the API's, which sends the key).

    The client is made on the first fetch, with the TLS context every client shares (`upstream.tls`).
    """

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport
        self._http_client: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http_client is None:
            self._http_client = httpx.AsyncClient(
                timeout=httpx.Timeout(30.0, connect=10.0),
                limits=httpx.Limits(
                    max_connections=DOWNLOAD_CONNECTIONS,
                    max_keepalive_connections=DOWNLOAD_CONNECTIONS,
                    keepalive_expiry=DOWNLOAD_KEEPALIVE_SECONDS,
                ),
                headers={"User-Agent": f"cutout-mcp/{__version__}"},
                follow_redirects=True,
                max_redirects=5,
                verify=shared_ssl_context(),
                transport=self._transport,
            )
        return self._http_client

    async def aclose(self) -> None:
        if self._http_client is not None:
            await self._http_client.aclose()
            self._http_client = None

    @contextlib.asynccontextmanager
    async def stream(self, url: str, cap: int) -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
        """The content type and the body's chunks of `url`; more than `cap` bytes is a `DownloadError`."""
        if urlsplit(url).scheme not in ("https", "http"):
            raise DownloadError("not an http(s) URL")
        try:
            async with self.http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise DownloadError(f"HTTP {response.status_code}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > cap:
                    raise DownloadError(f"larger than the {cap // (1024 * 1024)} MB cap")

                async def chunks() -> AsyncIterator[bytes]:
                    received = 0
                    async for chunk in response.aiter_bytes():
                        received += len(chunk)
                        if received > cap:
                            raise DownloadError(f"larger than the {cap // (1024 * 1024)} MB cap")
                        yield chunk

                mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
                yield mime, chunks()
        except httpx.HTTPError as exc:
            raise DownloadError(type(exc).__name__) from None
