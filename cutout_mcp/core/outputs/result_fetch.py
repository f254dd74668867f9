"""Fetching result files (videos, covers, edited images) over HTTP: guarded, capped, typed.

Every result URL comes from a remote answer, so it is fetched the way inputs are: through the SSRF
guard (`core.inputs.netguard`), which resolves the host, refuses loopback, private, link-local and cloud
metadata addresses, and connects to the address it checked, on every redirect hop too. Only the
trusted origins are exempt (`Settings.trusted_image_origins`: a declared sandbox's own loopback
origin), and those only on loopback. A body is capped in bytes, and its content type must be a
picture, a video, or unnamed binary; an HTML or JSON page is refused.

One download client lives as long as the server (`Downloads` owns a `ResultFetcher`): building an
httpx client costs ~20 ms of CPU for its TLS context, more than everything else a previewed edit
does. It is not the API client, which sends the key with every request.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cutout_mcp.errors import CutoutMcpError
from cutout_mcp.upstream.http import KEEPALIVE_SECONDS, build_client

if TYPE_CHECKING:  # httpx, httpcore and the guard are imported with the first fetch, not at start-up
    import httpcore
    import httpx

    from cutout_mcp.core.inputs.netguard import Resolver

DOWNLOAD_CONNECTIONS = 20
VIDEO_TYPES = ("video/", "image/gif")
IMAGE_TYPES = ("image/",)
UNNAMED_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
"""Content types a CDN may send for any file; accepted for both kinds (the file's own bytes decide later)."""


class DownloadError(CutoutMcpError):
    """A copy could not be made; the message says why in a few words (never a URL's secrets)."""


class ResultFetcher:
    """Streams result files with one httpx client of its own (never the API's, which sends the key).

    The client is made on the first fetch, with the TLS context every client shares (`upstream.tls`).
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        trusted_origins: Iterable[str] = (),
        resolver: Resolver | None = None,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._transport = transport
        self._trusted_origins = tuple(trusted_origins)
        self._resolver = resolver
        self._network = network
        self._http_client: httpx.AsyncClient | None = None

    def _guarded(self) -> httpx.AsyncBaseTransport:
        from cutout_mcp.core.inputs.netguard import GuardedBackend, guarded_transport, origin_key, system_resolver

        trusted = [key for key in map(origin_key, self._trusted_origins) if key]
        backend = GuardedBackend(resolver=self._resolver or system_resolver, inner=self._network, trusted=trusted)
        return guarded_transport(
            backend,
            max_connections=DOWNLOAD_CONNECTIONS,
            keepalive=DOWNLOAD_CONNECTIONS,
            keepalive_expiry=KEEPALIVE_SECONDS,
        )

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http_client is None:
            self._http_client = build_client(
                timeout=30.0,
                connections=DOWNLOAD_CONNECTIONS,
                transport=self._transport or self._guarded(),
                max_redirects=5,
            )
        return self._http_client

    async def aclose(self) -> None:
        if self._http_client is not None:
            await self._http_client.aclose()
            self._http_client = None

    @contextlib.asynccontextmanager
    async def stream(
        self, url: str, cap: int, types: tuple[str, ...] = VIDEO_TYPES + IMAGE_TYPES
    ) -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
        """The content type and the body's chunks of `url`; more than `cap` bytes, a content type outside
        `types` (prefixes) or an address the guard refuses is a `DownloadError`."""
        import httpx

        from cutout_mcp.core.inputs.netguard import BlockedAddressError, ResolutionError

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
                if mime not in UNNAMED_TYPES and not mime.startswith(types):
                    raise DownloadError(f"the answer is {mime}, not a picture or video")
                yield mime, chunks()
        except BlockedAddressError as exc:
            raise DownloadError(
                f"refused: {exc.host} is a {exc.reason} address ({exc.address}); result files are fetched "
                "from public addresses only"
            ) from None
        except ResolutionError as exc:
            raise DownloadError(str(exc)) from None
        except httpx.HTTPError as exc:
            raise DownloadError(type(exc).__name__) from None
