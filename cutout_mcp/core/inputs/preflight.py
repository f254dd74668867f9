"""Pre-flight image checks: refuse, before paying, what cutout.pro would refuse.

Before `generate_video` or `edit_image` spends credits, each image URL is
fetched through the SSRF guard (`netguard`): its headers, and only as many
bytes as Pillow needs to read the format and dimensions (at most
`HEAD_BYTES`). The call is refused, naming the rule, when the image is not an
image, is not JPEG/PNG for the edit API, is over 10 MB, has a side outside
300-6000 px for video, or breaks the seedream-4.0 rules. All limits come
from `catalog`.

A URL that cannot be fetched (unknown host, blocked address, timeout, HTTP
404) also refuses the paid call: cutout.pro would fail on it too, after
charging, and the person can fix the URL for free. `CUTOUT_PREFLIGHT=off`
turns the whole check off (for images only cutout.pro can reach).

The total size comes from `Content-Range` (a `Range` request is sent) or
`Content-Length`; when the server gives neither, the body is counted up to
the 10 MB limit within the time budget. When a JPEG keeps its dimensions
beyond `HEAD_BYTES` (very large metadata blocks), the size rules are left to
cutout.pro rather than refusing a valid image.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio

from cutout_mcp import __version__, catalog
from cutout_mcp.config import Settings
from cutout_mcp.core.inputs.image_rules import (
    ImageFacts,
    ImageRefusedError,
    check_edit_facts,
    check_video_facts,
    sniff,
)
from cutout_mcp.core.inputs.image_rules import refused as _refused
from cutout_mcp.telemetry import span

if TYPE_CHECKING:
    # Imported where used: Pillow, httpx, httpcore and h11 cost ~80 ms of start-up, and the server
    # answers tools/list before anyone checks an image.
    import httpcore
    import httpx
    from PIL import Image, ImageFile

    from cutout_mcp.core.inputs.netguard import GuardedBackend, Resolver

logger = logging.getLogger(__name__)

HEAD_BYTES = 256 * 1024
"""Most bytes read to find format and dimensions (JPEG metadata can push them past 64 KB)."""
MAX_REDIRECTS = 3
TIMEOUT_SECONDS = 10.0
"""Budget per image for DNS, connecting, redirects and reading."""

_CONTENT_RANGE_TOTAL = re.compile(r"^bytes\s+\d+-\d+/(\d+)$")

__all__ = ["HEAD_BYTES", "ImageFacts", "ImageInspector", "ImageRefusedError", "open_inspector"]


class ImageInspector:
    """Fetches image heads through the SSRF guard and applies the catalog's rules."""

    def __init__(
        self,
        *,
        trusted_origins: Iterable[str] = (),
        resolver: Resolver | None = None,
        network: httpcore.AsyncNetworkBackend | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._trusted_origins = tuple(trusted_origins)
        self._resolver = resolver
        self._network = network
        self._timeout = timeout
        self._backend: GuardedBackend | None = None
        self._http_client: httpx.AsyncClient | None = None

    @property
    def _http(self) -> httpx.AsyncClient:
        """Made on the first check (synchronously, so concurrent first checks share one): the guarded
        transport imports httpcore and loads the CA bundle, which start-up need not wait for."""
        if self._http_client is None:
            import httpx

            from cutout_mcp.core.inputs.netguard import GuardedBackend, guarded_transport, origin_key, system_resolver

            trusted = [key for key in map(origin_key, self._trusted_origins) if key]
            self._backend = GuardedBackend(
                resolver=self._resolver or system_resolver, inner=self._network, trusted=trusted
            )
            self._http_client = httpx.AsyncClient(
                transport=guarded_transport(self._backend),
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,
                trust_env=False,
                headers={"User-Agent": f"cutout-mcp/{__version__} (image pre-flight)", "Accept": "image/*"},
            )
        return self._http_client

    async def aclose(self) -> None:
        if self._http_client is not None:
            await self._http_client.aclose()

    async def check_video_image(self, url: str, argument: str = "image_url") -> ImageFacts:
        """Refuse an image the Image-to-Video API would refuse."""
        facts = await self.inspect(url, argument)
        check_video_facts(argument, facts)
        return facts

    async def check_edit_images(
        self, urls: Sequence[str], model: catalog.EditModel, *, first_index: int = 0
    ) -> list[ImageFacts]:
        """Refuse images the Image Edit API (and the chosen model) would refuse; `image_urls[first_index]`
        names the first of `urls`."""
        found = []
        for index, url in enumerate(urls, start=first_index):
            argument = f"image_urls[{index}]"
            facts = await self.inspect(url, argument)
            check_edit_facts(argument, facts, model)
            found.append(facts)
        return found

    async def inspect(self, url: str, argument: str) -> ImageFacts:
        """Format, dimensions and size of the image at `url`, or `ImageRefusedError`."""
        import httpx

        from cutout_mcp.core.inputs.netguard import BlockedAddressError, ResolutionError

        try:
            with span("cutout.preflight", **{"cutout.argument": argument}), anyio.fail_after(self._timeout):
                return await self._follow(url, argument)
        except TimeoutError:
            raise _unreachable(argument, f"it did not answer within {self._timeout:g} s") from None
        except BlockedAddressError as exc:
            raise _refused(
                argument,
                f"{exc.host} is a {exc.reason} address ({exc.address}); only public addresses are fetched",
            ) from None
        except ResolutionError as exc:
            raise _unreachable(argument, str(exc)) from None
        except httpx.HTTPError as exc:
            raise _unreachable(argument, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None

    async def _follow(self, url: str, argument: str) -> ImageFacts:
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            _check_hop(current, argument)
            request = self._http.build_request("GET", current, headers={"Range": f"bytes=0-{HEAD_BYTES - 1}"})
            response = await self._http.send(request, stream=True)
            try:
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise _unreachable(argument, f"HTTP {response.status_code} redirect without a Location")
                    current = str(response.url.join(location))
                    continue
                if response.status_code not in (200, 206):
                    raise _unreachable(argument, f"the server answered HTTP {response.status_code}")
                return await _read_facts(response, argument)
            finally:
                await response.aclose()
        raise _refused(argument, f"more than {MAX_REDIRECTS} redirects")


def _check_hop(url: str, argument: str) -> None:
    """Every hop must be plain http(s) without credentials; addresses are checked on connect."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refused(argument, f"a redirect leads to a non-http(s) URL ({parts.scheme or 'no'} scheme)")
    if parts.username is not None or parts.password is not None:
        raise _refused(argument, "a redirect leads to a URL with a user name or password")


def _total_size(response: httpx.Response) -> int | None:
    if response.status_code == 206:
        match = _CONTENT_RANGE_TOTAL.match(response.headers.get("content-range", "").strip())
        return int(match.group(1)) if match else None
    length = response.headers.get("content-length", "")
    return int(length) if length.isdigit() else None


async def _read_facts(response: httpx.Response, argument: str) -> ImageFacts:
    limit = catalog.MAX_IMAGE_BYTES
    total = _total_size(response)
    if total is not None and total > limit:
        raise _refused(argument, f"the image is {total:,} bytes; the limit is {limit:,} ({catalog.MAX_IMAGE_MB} MB)")
    from PIL import ImageFile

    parser = ImageFile.Parser()
    head = bytearray()
    image: Image.Image | None = None
    chunks = response.aiter_bytes()
    async for chunk in chunks:
        head += chunk
        image = _feed(parser, chunk, argument)
        if image is not None or len(head) >= HEAD_BYTES:
            break
    if total is None and response.status_code == 200:
        # No declared size: count the body, up to just past the limit.
        counted = len(head)
        async for chunk in chunks:
            counted += len(chunk)
            if counted > limit:
                raise _refused(argument, f"the image is over {limit:,} bytes ({catalog.MAX_IMAGE_MB} MB)")
        total = counted
    if image is not None:
        fmt = "JPEG" if image.format == "MPO" else (image.format or "unknown")
        return ImageFacts(fmt, image.width, image.height, total)
    sniffed = sniff(bytes(head[:16]))
    if sniffed is None:
        kind = response.headers.get("content-type", "no content type").split(";")[0].strip()
        raise _refused(argument, f"it is not an image that can be read ({kind})")
    logger.info("Pre-flight: %s dimensions not found in the first %d bytes; left to cutout.pro", argument, HEAD_BYTES)
    return ImageFacts(sniffed, None, None, total)


def _feed(parser: ImageFile.Parser, chunk: bytes, argument: str) -> Image.Image | None:
    """Feed Pillow; its image appears once the header is parsed."""
    from PIL import Image

    try:
        parser.feed(chunk)
    except Image.DecompressionBombError:
        raise _refused(argument, "the image has far more pixels than any limit allows") from None
    except Exception:  # a corrupt body after the header: the header is what counts
        logger.debug("Pre-flight: Pillow could not decode past the header of %s", argument)
    return parser.image


def _unreachable(argument: str, why: str) -> ImageRefusedError:
    return ImageRefusedError(
        f"{argument} could not be fetched for the pre-flight check ({why}); nothing was sent to cutout.pro "
        "and no credits were spent. Check that the URL is public and points at the image itself."
    )


@asynccontextmanager
async def open_inspector(
    settings: Settings, given: ImageInspector | None = None
) -> AsyncIterator[ImageInspector | None]:
    """The server's inspector for its lifetime: `given` (tests), a new one, or None when switched off."""
    if given is not None:
        yield given
        return
    if not settings.preflight:
        yield None
        return
    inspector = ImageInspector(trusted_origins=settings.trusted_image_origins)
    try:
        yield inspector
    finally:
        await inspector.aclose()
