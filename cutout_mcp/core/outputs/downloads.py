"""Results people can open: local copies of finished videos and edits, and an inline preview.

cutout.pro's result links expire. With `CUTOUT_OUTPUT_DIR` set, a finished
video, its cover and an edited image are downloaded into that folder, and the
tool result names the local path and carries `resource_link` blocks to it.

Decisions:
- Files are written whole or not at all, under names no URL or answer can
  choose (`core.outputs.output_files`); fetching is `core.outputs.result_fetch`, shrinking
  images `core.outputs.previews`.
- Each download is capped in bytes and in time. A failed download never loses
  the result: the remote URL is still returned and the message says the copy
  failed.
- `edit_image` adds a small JPEG preview (at most `PREVIEW_SIDE_PX` per side
  and `PREVIEW_MAX_BYTES`) so the assistant can see the edit; it is made from
  the local copy when there is one, otherwise from a bounded fetch.
- A finished video gets a contact sheet within the same bounds (four frames,
  `core.outputs.contact_sheet`), or its cover's preview when the frames cannot be had
  (no PyAV for an MP4, a video over the fetch cap, an unreadable file). It is
  made from the local copy when there is one. Either picture is left out,
  never the result, on failure. A finished video never changes, so its sheet
  is made once and shared: by every waiter of the job, and by later reads of
  the last `SHEETS_KEPT` jobs (`core.outputs.made_once`); a cover shown instead is not
  kept, so the next read tries for the sheet again.
- A preview or sheet is a nicety: fetching, decoding and shrinking it share
  one overall budget (`CUTOUT_PREVIEW_SECONDS`), after which the result goes
  out without it and the reason is logged. Shrinking runs in worker threads, `PREVIEW_WORKERS`
  at a time (a large PNG decodes to hundreds of MB), and JPEGs are decoded
  straight at 1/2, 1/4 or 1/8 scale (`Image.draft`), which is most of the win.
- One download client lives as long as the server (`open_context` enters
  `Downloads`, which owns a `ResultFetcher`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import anyio

from cutout_mcp.config import DEFAULT_PREVIEW_SECONDS
from cutout_mcp.core.outputs.contact_sheet import contact_sheet
from cutout_mcp.core.outputs.made_once import MadeOnce
from cutout_mcp.core.outputs.output_files import (
    TYPE_BY_EXT,
    Kind,
    Saved,
    commit,
    discard,
    extension,
    prepare,
    remote_link,
)
from cutout_mcp.core.outputs.previews import PREVIEW_MAX_BYTES, PREVIEW_SIDE_PX, make_preview, preview_file
from cutout_mcp.core.outputs.result_fetch import IMAGE_TYPES, VIDEO_TYPES, DownloadError, ResultFetcher
from cutout_mcp.core.results import Attachment, Delivered, EditResult, Picture, ResultT, VideoJob

if TYPE_CHECKING:
    import httpx

__all__ = [
    "PREVIEW_MAX_BYTES",
    "PREVIEW_SIDE_PX",
    "DownloadError",
    "Downloads",
    "Saved",
    "make_preview",
    "preview_file",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_VIDEO_BYTES = 500 * 1024 * 1024
MAX_IMAGE_BYTES = 50 * 1024 * 1024
DOWNLOAD_SECONDS = 120.0
"""Bound on one download, added to a tool call's wait: a slow copy fails and the URL remains."""
PREVIEW_FETCH_BYTES = 20 * 1024 * 1024
PREVIEW_WORKERS = 2
"""Images shrunk at once; more wait their turn (within the budget), which bounds CPU and memory."""
SHEETS_KEPT = 16
"""Contact sheets kept in memory for the most recently read finished jobs (each at most PREVIEW_MAX_BYTES)."""


class Downloads:
    """Fetches result files with one httpx client of its own (never the API's, which sends the key).

    Use it as an async context manager (the server's lifespan does) so the client is closed; the client
    itself is made on the first download, with the TLS context every client shares (`upstream.tls`).
    """

    def __init__(
        self,
        output_dir: Path | None,
        *,
        preview: bool = True,
        preview_seconds: float = DEFAULT_PREVIEW_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
        trusted_origins: Iterable[str] = (),
    ) -> None:
        self.output_dir = output_dir.expanduser().resolve() if output_dir is not None else None
        self.preview_enabled = preview
        self.preview_seconds = preview_seconds
        self.fetcher = ResultFetcher(transport, trusted_origins=trusted_origins)
        self._workers = anyio.CapacityLimiter(PREVIEW_WORKERS)
        self._sheets: MadeOnce[int, bytes] = MadeOnce(SHEETS_KEPT)

    async def __aenter__(self) -> Downloads:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.fetcher.aclose()

    # --- saving ---------------------------------------------------------------------

    async def save(self, url: str, stem: str, kind: Kind) -> Saved:
        """Download `url` to `<output_dir>/<stem><ext>`, or return the copy already there."""
        root = self.output_dir
        if root is None:
            raise DownloadError("no output folder is set")
        if not stem.replace("-", "").isalnum():
            raise ValueError(f"unsafe file stem {stem!r}")
        cap, types = (MAX_VIDEO_BYTES, VIDEO_TYPES) if kind == "video" else (MAX_IMAGE_BYTES, IMAGE_TYPES)
        try:
            existing, part = await anyio.to_thread.run_sync(prepare, root, stem)
            if existing is not None:
                return existing
            assert part is not None
            try:
                async with await anyio.open_file(part, "wb") as sink:
                    with anyio.fail_after(DOWNLOAD_SECONDS):
                        async with self.fetcher.stream(url, cap, types) as (mime, chunks):
                            size = 0
                            async for chunk in chunks:
                                size += len(chunk)
                                await sink.write(chunk)
                ext = extension(mime, url, kind)
                final = await anyio.to_thread.run_sync(commit, part, root, f"{stem}{ext}")
            finally:
                await anyio.to_thread.run_sync(discard, part)
        except TimeoutError:
            raise DownloadError(f"took longer than {DOWNLOAD_SECONDS:.0f} s") from None
        except OSError as exc:
            raise DownloadError(f"cannot write there: {exc.strerror or type(exc).__name__}") from None
        return Saved(final, TYPE_BY_EXT.get(ext, "application/octet-stream"), size)

    # --- previews and other image work -------------------------------------------------

    async def preview(self, url: str, saved: Saved | None = None) -> Picture | None:
        """A small JPEG of the image, or None when it cannot be had within the preview budget."""
        if not self.preview_enabled:
            return None

        jpeg = await self.within_budget("preview of the image", lambda: self._preview_bytes(url, saved))
        return None if jpeg is None else Picture(jpeg)

    async def video_sheet(
        self, job: VideoJob, video: Saved | None = None, cover: Saved | None = None
    ) -> Picture | None:
        """Frames of a finished video in one small JPEG (`core.outputs.contact_sheet`), else its cover's preview, else
        None; all of it within the one preview budget."""
        if not self.preview_enabled or not job.result_url:
            return None
        video_url, cover_url = job.result_url, job.cover_url

        async def make_sheet() -> bytes:
            source = video.path if video is not None else await self._fetch_small(video_url)
            return await self.off_loop(contact_sheet, source)

        async def make() -> bytes:
            # Only a sheet is kept: a cover shown because the video could not be had this time (a network
            # error, say) must not stand in for the sheet on the next read.
            try:
                sheet = await self._sheets.get(job.id, make_sheet)
            except (DownloadError, OSError, ValueError) as exc:
                sheet, reason = None, str(exc)
            else:
                reason = "another reader's attempt at it failed"
            if sheet is not None:
                return sheet
            if not cover_url:
                raise DownloadError(reason)
            try:
                picture = await self._preview_bytes(cover_url, cover)
            except (DownloadError, OSError, ValueError) as exc:
                raise DownloadError(f"{reason}; its cover could not be shown either ({exc})") from exc
            logger.info("No contact sheet for video job %s (%s); showing its cover", job.id, reason)
            return picture

        jpeg = await self.within_budget(f"contact sheet of video job {job.id}", make)
        return None if jpeg is None else Picture(jpeg)

    async def _preview_bytes(self, url: str, saved: Saved | None) -> bytes:
        if saved is not None:
            return await self.off_loop(preview_file, saved.path)
        return await self.off_loop(make_preview, await self._fetch_small(url))

    async def _fetch_small(self, url: str) -> bytes:
        """A result file fetched into memory for a picture, within the preview's byte cap."""
        async with self.fetcher.stream(url, PREVIEW_FETCH_BYTES) as (_, chunks):
            return b"".join([chunk async for chunk in chunks])

    async def within_budget(self, what: str, work: Callable[[], Awaitable[T]]) -> T | None:
        """`work()`, or None (and a log line saying why) when it fails or outlasts the preview budget.

        For extras that ride along with a result (a preview, a contact sheet): they must never hold the
        result back or cost the caller it.
        """
        try:
            with anyio.fail_after(self.preview_seconds):
                return await work()
        except TimeoutError:
            logger.info(
                "No %s: not ready within %g s (CUTOUT_PREVIEW_SECONDS); returning the result without it",
                what,
                self.preview_seconds,
            )
        except (DownloadError, OSError, ValueError) as exc:
            logger.info("No %s: %s", what, exc)
        return None

    async def off_loop(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` in a worker thread, at most `PREVIEW_WORKERS` at once.

        Waiting for a worker can be cancelled (the budget); a running job finishes first, so the
        bound on threads and memory holds even when budgets expire.
        """
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._workers)

    # --- what the tools return ----------------------------------------------------------

    async def deliver_video(self, job: VideoJob) -> Delivered[VideoJob]:
        """`keep_video`, except that nothing going wrong there can cost the caller the result itself."""
        return await _deliver(job, self.keep_video(job), f"video job {job.id}")

    async def deliver_edit(self, result: EditResult) -> Delivered[EditResult]:
        """`keep_edit`, except that nothing going wrong there can cost the caller the paid edit."""
        return await _deliver(result, self.keep_edit(result), f"edit {result.id}")

    async def keep_video(self, job: VideoJob) -> tuple[VideoJob, list[Attachment]]:
        """A finished job with local copies (when an output folder is set) and links to them."""
        if job.status != "succeeded" or not job.result_url:
            return job, []
        if self.output_dir is None:
            remote = remote_link(job.result_url, f"video-{job.id}", "The video (the link expires).")
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
            blocks.append(remote_link(job.result_url, f"video-{job.id}", "The video (the link expires)."))
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
        return _updated(job, update), blocks

    async def keep_edit(self, result: EditResult) -> tuple[EditResult, list[Attachment]]:
        """An edit with its local copy (when an output folder is set), a link, and a preview."""
        blocks: list[Attachment] = []
        saved: Saved | None = None
        update: dict[str, object] = {}
        if self.output_dir is None:
            blocks.append(remote_link(result.image_url, f"edit-{result.id}", "The edited image (the link expires)."))
        else:
            try:
                saved = await self.save(result.image_url, f"edit-{result.id}", "image")
            except DownloadError as exc:
                update["message"] = (
                    f"{result.message} Saving the image to {self.output_dir} failed ({exc}); "
                    "image_url still works until it expires."
                )
                blocks.append(
                    remote_link(result.image_url, f"edit-{result.id}", "The edited image (the link expires).")
                )
            else:
                update["local_path"] = str(saved.path)
                update["message"] = f"{result.message} Saved to {saved.path}."
                blocks.append(saved.link(saved.path.name, f"Edit {result.id}, saved locally."))
        preview = await self.preview(result.image_url, saved)
        if preview is not None:
            blocks.append(preview)
        return _updated(result, update), blocks


def _updated(result: ResultT, update: dict[str, object]) -> ResultT:
    """`result` with `update` applied; the same object when there is nothing to change (no copy per call)."""
    return result.model_copy(update=update) if update else result


async def _deliver(
    result: ResultT, keeping: Awaitable[tuple[ResultT, list[Attachment]]], what: str
) -> Delivered[ResultT]:
    """The kept result and its attachments, or the result as it was when keeping it failed (logged)."""
    try:
        kept, attachments = await keeping
    except Exception:
        logger.exception("Making %s openable failed; returning it as it was", what)
        return Delivered(result)
    return Delivered(kept, tuple(attachments))
