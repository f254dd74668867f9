"""Results people can open: local copies of finished videos and edits, and an inline preview.

cutout.pro's result links expire. With `CUTOUT_OUTPUT_DIR` set, a finished
video, its cover and an edited image are downloaded into that folder, and the
tool result names the local path and carries `resource_link` blocks to it.

Decisions:
- A download is streamed to a hidden temporary file in the output folder and
  renamed over the final name only when complete, so a file with the final
  name is always whole, and a second read of the same job reuses it.
- The file name is built from the numeric job or edit id and an extension from
  a short allowlist; neither the URL nor any server answer can name a file, and
  the final path is checked to sit directly inside the output folder.
- Each download is capped in bytes and in time. A failed download never loses
  the result: the remote URL is still returned and the message says the copy
  failed.
- `edit_image` adds a small JPEG preview (at most `PREVIEW_SIDE_PX` per side
  and `PREVIEW_MAX_BYTES`) so the assistant can see the edit; it is made from
  the local copy when there is one, otherwise from a bounded fetch.
- A finished video gets a contact sheet within the same bounds (four frames,
  `core.contact_sheet`), or its cover's preview when the frames cannot be had
  (no PyAV for an MP4, a video over the fetch cap, an unreadable file). It is
  made from the local copy when there is one, and fetching and decoding share
  one time bound. Either picture is left out, never the result, on failure.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import anyio
import httpx

from cutout_mcp import __version__
from cutout_mcp.core.contact_sheet import contact_sheet
from cutout_mcp.core.jpeg import fit_jpeg
from cutout_mcp.core.results import Attachment, Delivered, EditResult, FileLink, Picture, VideoJob
from cutout_mcp.errors import CutoutMcpError

logger = logging.getLogger(__name__)

Kind = Literal["video", "image"]

MAX_VIDEO_BYTES = 500 * 1024 * 1024
MAX_IMAGE_BYTES = 50 * 1024 * 1024
DOWNLOAD_SECONDS = 120.0
"""Bound on one download, added to a tool call's wait: a slow copy fails and the URL remains."""
PREVIEW_FETCH_BYTES = 20 * 1024 * 1024
PREVIEW_FETCH_SECONDS = 15.0
PREVIEW_SIDE_PX = 512
PREVIEW_MAX_BYTES = 200 * 1024
PREVIEW_MAX_SOURCE_PIXELS = 80_000_000
"""Larger images are not decoded for a preview (a decompression bomb guard)."""

_EXT_BY_TYPE = {
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "image/gif": ".gif",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
}
_TYPE_BY_EXT = {ext: mime for mime, ext in _EXT_BY_TYPE.items()} | {".jpeg": "image/jpeg"}
_DEFAULT_EXT: dict[Kind, str] = {"video": ".mp4", "image": ".jpg"}
_PART_PREFIX = ".part-"


class DownloadError(CutoutMcpError):
    """A copy could not be made; the message says why in a few words (never a URL's secrets)."""


@dataclass(frozen=True)
class Saved:
    path: Path
    mime_type: str
    size: int

    def link(self, name: str, description: str) -> FileLink:
        return FileLink(self.path.as_uri(), name, description, self.mime_type, self.size)


class Downloads:
    """Fetches result files with a short-lived httpx client of its own (never the API's, which sends the key)."""

    def __init__(
        self,
        output_dir: Path | None,
        *,
        preview: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.output_dir = output_dir.expanduser().resolve() if output_dir is not None else None
        self.preview_enabled = preview
        self._transport = transport

    # --- saving ---------------------------------------------------------------------

    async def save(self, url: str, stem: str, kind: Kind) -> Saved:
        """Download `url` to `<output_dir>/<stem><ext>`, or return the copy already there."""
        root = self.output_dir
        if root is None:
            raise DownloadError("no output folder is set")
        if not stem.replace("-", "").isalnum():
            raise ValueError(f"unsafe file stem {stem!r}")
        cap = MAX_VIDEO_BYTES if kind == "video" else MAX_IMAGE_BYTES
        try:
            existing, part = await anyio.to_thread.run_sync(_prepare, root, stem)
            if existing is not None:
                return existing
            assert part is not None
            try:
                async with await anyio.open_file(part, "wb") as sink:
                    with anyio.fail_after(DOWNLOAD_SECONDS):
                        async with self._stream(url, cap) as (mime, chunks):
                            size = 0
                            async for chunk in chunks:
                                size += len(chunk)
                                await sink.write(chunk)
                ext = _extension(mime, url, kind)
                final = await anyio.to_thread.run_sync(_commit, part, root, f"{stem}{ext}")
            finally:
                await anyio.to_thread.run_sync(_discard, part)
        except TimeoutError:
            raise DownloadError(f"took longer than {DOWNLOAD_SECONDS:.0f} s") from None
        except OSError as exc:
            raise DownloadError(f"cannot write there: {exc.strerror or type(exc).__name__}") from None
        return Saved(final, _TYPE_BY_EXT.get(ext, "application/octet-stream"), size)

    @contextlib.asynccontextmanager
    async def _stream(self, url: str, cap: int) -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
        if urlsplit(url).scheme not in ("https", "http"):
            raise DownloadError("not an http(s) URL")
        try:
            async with (
                httpx.AsyncClient(
                    timeout=httpx.Timeout(30.0, connect=10.0),
                    headers={"User-Agent": f"cutout-mcp/{__version__}"},
                    follow_redirects=True,
                    max_redirects=5,
                    transport=self._transport,
                ) as http,
                http.stream("GET", url) as response,
            ):
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

    # --- previews -------------------------------------------------------------------

    async def preview(self, url: str, saved: Saved | None = None) -> Picture | None:
        """A small JPEG of the image, or None when it cannot be fetched or read."""
        if not self.preview_enabled:
            return None
        try:
            data = await anyio.Path(saved.path).read_bytes() if saved is not None else await self._fetch_small(url)
            jpeg = await anyio.to_thread.run_sync(make_preview, data)
        except (DownloadError, TimeoutError, OSError, ValueError) as exc:
            logger.info("No preview for the image: %s", exc)
            return None
        return Picture(jpeg)

    async def video_sheet(
        self, job: VideoJob, video: Saved | None = None, cover: Saved | None = None
    ) -> Picture | None:
        """Frames of a finished video in one small JPEG (`core.contact_sheet`), else its cover's preview, else
        None; fetching and decoding share the preview's time bound."""
        if not self.preview_enabled or not job.result_url:
            return None
        with anyio.move_on_after(PREVIEW_FETCH_SECONDS):
            try:
                source = video.path if video is not None else await self._fetch_small(job.result_url)
                jpeg = await anyio.to_thread.run_sync(contact_sheet, source, abandon_on_cancel=True)
            except (DownloadError, TimeoutError, OSError, ValueError) as exc:
                logger.info("No contact sheet for video job %s (%s); showing its cover", job.id, exc)
            else:
                return Picture(jpeg)
            if job.cover_url:
                return await self.preview(job.cover_url, cover)
        return None

    async def _fetch_small(self, url: str) -> bytes:
        """A result file fetched into memory for a preview, within the preview's byte and time bounds."""
        with anyio.fail_after(PREVIEW_FETCH_SECONDS):
            async with self._stream(url, PREVIEW_FETCH_BYTES) as (_, chunks):
                return b"".join([chunk async for chunk in chunks])

    # --- what the tools return ----------------------------------------------------------

    async def deliver_video(self, job: VideoJob) -> Delivered[VideoJob]:
        """`keep_video`, except that nothing going wrong there can cost the caller the result itself."""
        try:
            kept, attachments = await self.keep_video(job)
        except Exception:
            logger.exception("Making video job %s openable failed; returning it as it was", job.id)
            return Delivered(job)
        return Delivered(kept, tuple(attachments))

    async def deliver_edit(self, result: EditResult) -> Delivered[EditResult]:
        """`keep_edit`, except that nothing going wrong there can cost the caller the paid edit."""
        try:
            kept, attachments = await self.keep_edit(result)
        except Exception:
            logger.exception("Making edit %s openable failed; returning it as it was", result.id)
            return Delivered(result)
        return Delivered(kept, tuple(attachments))

    async def keep_video(self, job: VideoJob) -> tuple[VideoJob, list[Attachment]]:
        """A finished job with local copies (when an output folder is set) and links to them."""
        if job.status != "succeeded" or not job.result_url:
            return job, []
        if self.output_dir is None:
            remote = _remote_link(job.result_url, f"video-{job.id}", "The video (the link expires).")
            sheet = await self.video_sheet(job)
            return job, [remote] if sheet is None else [remote, sheet]
        update: dict[str, object] = {}
        blocks: list[Attachment] = []
        notes: list[str] = []
        video: Saved | None = None
        cover: Saved | None = None
        try:
            video = await self.save(job.result_url, f"video-{job.id}", "video")
        except DownloadError as exc:
            notes.append(
                f"Saving the video to {self.output_dir} failed ({exc}); result_url still works until it expires."
            )
            blocks.append(_remote_link(job.result_url, f"video-{job.id}", "The video (the link expires)."))
        else:
            update["local_path"] = str(video.path)
            notes.append(f"Saved to {video.path}.")
            blocks.append(video.link(video.path.name, f"Video job {job.id}, saved locally."))
        if job.cover_url:
            try:
                cover = await self.save(job.cover_url, f"video-{job.id}-cover", "image")
            except DownloadError as exc:
                notes.append(f"Saving the cover failed ({exc}).")
            else:
                update["cover_local_path"] = str(cover.path)
                blocks.append(cover.link(cover.path.name, f"Cover of video job {job.id}."))
        sheet = await self.video_sheet(job, video, cover)
        if sheet is not None:
            blocks.append(sheet)
        update["message"] = " ".join([job.message, *notes])
        return job.model_copy(update=update), blocks

    async def keep_edit(self, result: EditResult) -> tuple[EditResult, list[Attachment]]:
        """An edit with its local copy (when an output folder is set), a link, and a preview."""
        blocks: list[Attachment] = []
        saved: Saved | None = None
        update: dict[str, object] = {}
        if self.output_dir is None:
            blocks.append(_remote_link(result.image_url, f"edit-{result.id}", "The edited image (the link expires)."))
        else:
            try:
                saved = await self.save(result.image_url, f"edit-{result.id}", "image")
            except DownloadError as exc:
                update["message"] = (
                    f"{result.message} Saving the image to {self.output_dir} failed ({exc}); "
                    "image_url still works until it expires."
                )
                blocks.append(
                    _remote_link(result.image_url, f"edit-{result.id}", "The edited image (the link expires).")
                )
            else:
                update["local_path"] = str(saved.path)
                update["message"] = f"{result.message} Saved to {saved.path}."
                blocks.append(saved.link(saved.path.name, f"Edit {result.id}, saved locally."))
        preview = await self.preview(result.image_url, saved)
        if preview is not None:
            blocks.append(preview)
        return result.model_copy(update=update), blocks


def make_preview(data: bytes) -> bytes:
    """A JPEG thumbnail of `data` within `PREVIEW_SIDE_PX` and `PREVIEW_MAX_BYTES` (raises if unreadable)."""
    from PIL import Image  # here, not at module level: Pillow costs ~25 ms of start-up

    try:
        with Image.open(io.BytesIO(data)) as source:
            if source.width * source.height > PREVIEW_MAX_SOURCE_PIXELS:
                raise ValueError(f"{source.width}×{source.height} is too large to preview")
            image = source.convert("RGBA")
    except Image.DecompressionBombError as exc:
        raise ValueError(str(exc)) from None
    flat = Image.new("RGB", image.size, "white")
    flat.paste(image, mask=image.getchannel("A"))
    return fit_jpeg(flat, PREVIEW_SIDE_PX, PREVIEW_MAX_BYTES)


def _remote_link(url: str, name: str, description: str) -> FileLink:
    ext = Path(urlsplit(url).path).suffix.lower()
    return FileLink(url, name, description, _TYPE_BY_EXT.get(ext))


def _extension(mime: str, url: str, kind: Kind) -> str:
    if mime in _EXT_BY_TYPE:
        return _EXT_BY_TYPE[mime]
    ext = Path(urlsplit(url).path).suffix.lower()
    return ext if ext in _TYPE_BY_EXT else _DEFAULT_EXT[kind]


def _prepare(root: Path, stem: str) -> tuple[Saved | None, Path | None]:
    """The copy already made, or a new empty temporary file to download into."""
    existing = _existing(root, stem)
    if existing is not None:
        return existing, None
    root.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=root, prefix=_PART_PREFIX, suffix=".tmp")
    os.close(fd)
    return None, Path(name)


def _commit(part: Path, root: Path, name: str) -> Path:
    final = _inside(root, name)
    os.replace(part, final)  # atomic: the final name only ever holds a whole file
    return final


def _discard(part: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        part.unlink()


def _inside(root: Path, name: str) -> Path:
    """`root/name`, refusing anything that would not sit directly in `root`."""
    path = (root / name).resolve()
    if path.parent != root or name.startswith("."):
        raise DownloadError("unsafe file name")
    return path


def _existing(root: Path, stem: str) -> Saved | None:
    for ext, mime in _TYPE_BY_EXT.items():
        path = root / f"{stem}{ext}"
        if path.is_file() and not path.is_symlink() and path.stat().st_size > 0:
            return Saved(path, mime, path.stat().st_size)
    return None
