"""Fetching source images and producing, once, the media the sandbox serves.

Media is rendered on the first request for it and kept in memory, so clients
can poll and download as often as they like. Rendering runs in a worker thread
to keep the event loop responsive.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import httpx

from cutout_mcp import catalog
from cutout_mcp.sandbox import media
from cutout_mcp.sandbox.config import SandboxConfig
from cutout_mcp.sandbox.envelope import VIDEO_SUCCEEDED
from cutout_mcp.sandbox.paths import SAMPLE_PHOTO, STAGING_PREFIX
from cutout_mcp.sandbox.records import EditRecord, Progress, VideoJob

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

T = TypeVar("T")

SOURCE_CACHE_LIMIT = 32
MEDIA_PATH = re.compile(r"^/media/(?P<kind>video|cover|edit)/(?P<id>\d{1,19})\.(?P<ext>mp4|gif|jpg)$")
CONTENT_TYPES = {"mp4": "video/mp4", "gif": "image/gif", "jpg": "image/jpeg"}


@dataclass(frozen=True)
class MediaFile:
    body: bytes
    content_type: str


class _Memo(Generic[T]):
    """Async memoisation with one producer per key; optionally bounded (oldest evicted)."""

    def __init__(self, limit: int | None = None) -> None:
        self._values: OrderedDict[str, T] = OrderedDict()
        self._locks: dict[str, anyio.Lock] = {}
        self._limit = limit

    async def get(self, key: str, make: Callable[[], Awaitable[T]]) -> T:
        if key in self._values:
            self._values.move_to_end(key)
            return self._values[key]
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            if key in self._values:
                return self._values[key]
            value = await make()
            self._values[key] = value
            if self._limit is not None and len(self._values) > self._limit:
                self._values.popitem(last=False)
        self._locks.pop(key, None)
        return value

    def clear(self) -> None:
        self._values.clear()


def media_url(base_url: str, kind: str, item_id: int, ext: str) -> str:
    return f"{base_url.rstrip('/')}/media/{kind}/{item_id}.{ext}"


class Holdings(Protocol):
    """What the media library reads of the sandbox's state (`SandboxState` is one)."""

    config: SandboxConfig
    video_ext: media.VideoExt
    jobs: dict[int, VideoJob]
    edits: dict[int, EditRecord]

    def progress(self, job: VideoJob) -> Progress: ...


class MediaLibrary:
    def __init__(self, state: Holdings) -> None:
        self._state = state
        self._sample: _Memo[bytes] = _Memo()
        self._sources: _Memo[PILImage | None] = _Memo(limit=SOURCE_CACHE_LIMIT)
        self._videos: _Memo[media.RenderedVideo] = _Memo()
        self._edits: _Memo[bytes] = _Memo()

    def clear(self) -> None:
        for memo in (self._sources, self._videos, self._edits):
            memo.clear()

    async def sample_photo(self) -> bytes:
        return await self._sample.get("sample", lambda: anyio.to_thread.run_sync(media.sample_photo))

    async def source(self, url: str, base_url: str) -> PILImage | None:
        """The decoded image behind `url`, or None when it cannot be had (a placeholder is drawn)."""

        async def load() -> PILImage | None:
            data = await self._fetch(url, base_url)
            if data is None:
                return None
            return await anyio.to_thread.run_sync(media.decode_image, data)

        return await self._sources.get(url, load)

    async def fetch_staged(self, urls: tuple[str, ...] | list[str], base_url: str) -> None:
        """Fetch the sources staged on this sandbox at once, as cutout.pro fetches its inputs while the job
        is young: a staged object may be deleted once the job is done."""
        for url in urls:
            parts = urlsplit(url)
            if parts.netloc == urlsplit(base_url).netloc and parts.path.startswith(STAGING_PREFIX):
                await self.source(url, base_url)

    async def video(self, job: VideoJob, base_url: str) -> media.RenderedVideo:
        async def render() -> media.RenderedVideo:
            source = await self.source(job.image_url, base_url)
            make = functools.partial(media.render_video, source, job.prompt, self._state.video_ext)
            return await anyio.to_thread.run_sync(make)

        return await self._videos.get(str(job.id), render)

    async def video_size(self, job: VideoJob, base_url: str) -> tuple[int, int]:
        """The finished video's dimensions, known from the source without rendering it."""
        source = await self.source(job.image_url, base_url)
        return media.video_size(*(source.size if source is not None else media.PLACEHOLDER_SIZE))

    async def edit_image(self, record: EditRecord, base_url: str) -> bytes:
        async def render() -> bytes:
            sources = [await self.source(url, base_url) for url in record.image_urls]
            make = functools.partial(media.render_edit, sources, record.prompt, record.aspect_ratio)
            return await anyio.to_thread.run_sync(make)

        return await self._edits.get(str(record.id), render)

    async def file(self, path: str, base_url: str) -> MediaFile | None:
        """The bytes served at a sandbox media `path`; None means 404."""
        if path == SAMPLE_PHOTO:
            return MediaFile(await self.sample_photo(), CONTENT_TYPES["jpg"])
        match = MEDIA_PATH.match(path)
        if match is None:
            return None
        kind, item_id, ext = match["kind"], int(match["id"]), match["ext"]
        state = self._state
        if kind in ("video", "cover"):
            job = state.jobs.get(item_id)
            wanted_ext = state.video_ext if kind == "video" else "jpg"
            if job is None or ext != wanted_ext or state.progress(job).status != VIDEO_SUCCEEDED:
                return None
            rendered = await self.video(job, base_url)
            return MediaFile(rendered.video if kind == "video" else rendered.cover, CONTENT_TYPES[ext])
        record = state.edits.get(item_id)
        if record is None or record.failed or ext != "jpg":
            return None
        return MediaFile(await self.edit_image(record, base_url), CONTENT_TYPES[ext])

    async def _fetch(self, url: str, base_url: str) -> bytes | None:
        """Bytes of `url`: served from memory when it points at this sandbox, else over http(s)."""
        parts, base = urlsplit(url), urlsplit(base_url)
        if parts.scheme not in ("http", "https"):
            return None
        if parts.netloc == base.netloc and parts.path.startswith(STAGING_PREFIX):
            # a staged image: fetched through its presigned URL like cutout.pro would, a real round trip
            return await fetch_remote(url, self._state.config.fetch_timeout)
        if parts.netloc == base.netloc:
            local = await self.file(parts.path, base_url)
            return local.body if local is not None else None
        if not self._state.config.fetch_remote:
            return None
        return await fetch_remote(url, self._state.config.fetch_timeout)


async def fetch_remote(url: str, limit_seconds: float) -> bytes | None:
    """GET `url` within `limit_seconds`, refusing bodies over the APIs' 10 MB limit."""
    with anyio.move_on_after(limit_seconds):
        try:
            async with (
                httpx.AsyncClient(timeout=limit_seconds, follow_redirects=True, max_redirects=3) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    return None
                chunks: list[bytes] = []
                total = 0
                async for chunk in response.aiter_bytes():
                    total += len(chunk)
                    if total > catalog.MAX_IMAGE_BYTES:
                        return None
                    chunks.append(chunk)
                return b"".join(chunks)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError):
            return None
    return None
