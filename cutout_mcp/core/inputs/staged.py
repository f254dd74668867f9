"""Staged images: content-addressed in the store, identified by content, deleted once no job needs them.

A checked image (`core.inputs.image_sources.CheckedImage`) is named by an HMAC-SHA256 of its bytes under a
secret every process sharing the ledger shares (`Storage.shared_secret`), so:

- its store key `staged/<digest>.jpg|png` is the same on every replica and after restarts, and cannot be
  guessed from the image (nor the image confirmed from the key) without the secret;
- identical bytes, whatever path, upload or data: URI they came from, are one object, put once (while a
  job holds it, it is looked up with `size()` instead), and one request identity (`content:<digest>`):
  the ledger's `find_active` and the paid path's dedupe use it, never the presigned URL, which changes
  with every signing.

cutout.pro receives `signed_get_url(key)` for the object; the URL is never recorded or shown.

Deletion: a video job's key is in the ledger (`staged_key`); when a read finds the job finished (the
watcher's update hook, a sweep at start-up and on `list_video_jobs`), the key is released. An edit's keys
are released after its answer. An `upload:` object goes when the content it was staged as does: an edit's
after the answer, a video's when its job finishes (until then the same call repeated with the same
reference reads the same bytes, so it is the same request and gets the same job, free). Release deletes
the object unless an unfinished job in the ledger or a submit under way on any replica still uses it
(content-addressed keys are shared). A submit marks its use in the shared guard table
(`staged-use:<key>:<id>`, with the paid path's lease) before it looks for the object, then waits while
the key's lock (`staged-lock:<key>`) is held; a delete takes that lock (for milliseconds), then looks for
marks before deleting. Whichever order they meet in, a delete either sees the mark or is over before the
submit checks the object (and puts it again). A failed delete is logged and retried by the next sweep; it
never fails a call.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from cutout_mcp.core.inputs.image_rules import EXTENSIONS
from cutout_mcp.core.inputs.image_sources import STAGED_PREFIX, CheckedImage, ImageInput, RemoteImage
from cutout_mcp.core.money.owners import THIS_PROCESS
from cutout_mcp.core.results import ACTIVE_STATUSES
from cutout_mcp.core.staging import ObjectStore, StagingError, upload_key
from cutout_mcp.core.storage import Guard, Storage, StorageError
from cutout_mcp.logs import PRESIGNED
from cutout_mcp.telemetry import span

if TYPE_CHECKING:
    from cutout_mcp.upstream.models import UpstreamVideoJob

logger = logging.getLogger(__name__)

SECRET_NAME = "staging-content-key"  # noqa: S105 - the name of a secret, not one
DELETE_SECONDS = 10.0
"""Bound on one release (ledger check and delete), so a slow store never holds up a read."""
LOCK_PREFIX, USE_PREFIX = "staged-lock:", "staged-use:"
"""Guard keys (`Storage.claim_guard`) of a staged object's lock and of each submit using it."""
LOCK_SECONDS = 5.0
"""A lock's lease: it is held for one mark or one delete, milliseconds; a dead holder's expires."""
LOCK_POLL_SECONDS = 0.01
SWEEP_SECONDS = 5.0
"""Bound on one sweep (start-up, `list_video_jobs`); it stops at the first failure, and the next one goes on."""
UNFINISHED_LOOKUP = 200
"""Unfinished jobs of one caller looked through for those made from an upload (per status)."""
STAGED_LABEL = "(a staged image)"
"""Shown for a staged URL upstream echoes when the ledger does not know the job."""


@dataclass(frozen=True)
class PlannedImage:
    """An image argument ready to be sent: its label, its identity, and how to get its URL."""

    label: str
    identity: str
    """The URL for a remote image, `content:<digest>` for staged bytes: what makes two requests the same."""
    remote_url: str | None = None
    image: CheckedImage | None = None
    staged_key: str | None = None


class StagedImages:
    """Naming, staging and releasing the images of one server (every tool call shares it)."""

    def __init__(self, store: ObjectStore | None, ledger: Storage, *, lease: float = 90.0) -> None:
        self.store = store
        self.ledger = ledger
        self._lease = lease
        """How long a submit's use mark lasts without its holder: past the longest submit (`guard_lease`)."""
        self._process = f"{THIS_PROCESS}/staging-{secrets.token_hex(4)}"
        """A holder name `core.money.owners` can read, so a dead process's use marks are ended with its guards."""
        self._calls = itertools.count()
        self._secret: bytes | None = None
        self._held: Counter[str] = Counter()
        """Keys a submit in this process is staging or paying for: not deleted under it."""

    async def plan(self, source: ImageInput) -> PlannedImage:
        """The image's identity and key (hashing runs in a worker thread: up to 10 MB)."""
        if isinstance(source, RemoteImage):
            return PlannedImage(source.label, source.url, remote_url=source.url)
        digest = source.digest
        if digest is None:
            digest = await anyio.to_thread.run_sync(await self.digester(), source.data)
        key = f"{STAGED_PREFIX}{digest}.{EXTENSIONS[source.facts.format]}"
        return PlannedImage(source.label, f"content:{digest}", image=source, staged_key=key)

    async def digester(self) -> Callable[[bytes], str]:
        """The content digest (an HMAC-SHA256 under the shared secret), for `load_image` to compute in the
        worker thread that already holds the bytes."""
        if self._secret is None:
            self._secret = await self.ledger.shared_secret(SECRET_NAME, secrets.token_bytes(32))
        secret = self._secret
        return lambda data: hmac.new(secret, data, hashlib.sha256).hexdigest()

    @asynccontextmanager
    async def holding(self, images: Iterable[PlannedImage]) -> AsyncIterator[None]:
        """Keep the images' objects from being released, by this process or any other sharing the ledger,
        while a submit stages and pays for them (until its job is recorded)."""
        keys = sorted({image.staged_key for image in images if image.staged_key is not None})
        self._held.update(keys)
        marks: list[Guard] = []
        try:
            for key in keys:
                marks.append(await self._mark(key))
            yield
        finally:
            with anyio.CancelScope(shield=True):
                for mark in marks:
                    try:
                        await self.ledger.release_guard(mark)
                    except StorageError:  # its lease ends it anyway
                        logger.warning("Could not release a staged image's use mark", exc_info=True)
            self._held.subtract(keys)
            for key in keys:
                if self._held[key] <= 0:
                    del self._held[key]

    async def _mark(self, key: str) -> Guard:
        """Mark a submit of `key` under way in the shared ledger, so that a delete on any replica either sees
        the mark or has finished before this submit looks for the object.

        One write and one read: the mark first, then a look for the key's lock. A delete takes the lock
        before it looks for marks. If this look finds no lock, any delete that had not yet taken it will see
        the mark; one that held it has finished (deleted, lock released) before this submit looks for the
        object, and the object is put again. If it finds the lock, it waits for the delete to finish."""
        mark = Guard(f"{USE_PREFIX}{key}:{secrets.token_hex(8)}", self._holder())
        await self.ledger.claim_guard(mark, self._lease, 0.0)  # a key of its own: always claimed
        try:
            await self._unlocked(LOCK_PREFIX + key)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.ledger.release_guard(mark)
            raise
        return mark

    async def _unlocked(self, lock_key: str) -> None:
        """Return once no one holds the lock `lock_key` (a delete holds it for milliseconds)."""
        with anyio.move_on_after(LOCK_SECONDS + 1):
            while True:  # polls the shared ledger: another process holds the lock, no event can say when it goes
                if not await self.ledger.guard_held(lock_key):
                    return
                await anyio.sleep(LOCK_POLL_SECONDS)
        raise StagingError("A staged image stayed locked by another server process; nothing was sent or charged.")

    async def _lock(self, lock: Guard) -> bool:
        """Claim a key's lock for a delete, without waiting: a submit's mark is there, or comes and waits."""
        return (await self.ledger.claim_guard(lock, LOCK_SECONDS, 0.0)).claimed

    def _holder(self) -> str:
        return f"{self._process}#{next(self._calls)}"

    async def url(self, image: PlannedImage) -> str:
        """What cutout.pro is given: the URL itself, or a presigned URL of the staged copy (put once)."""
        if image.remote_url is not None:
            return image.remote_url
        assert image.image is not None
        assert image.staged_key is not None
        assert self.store is not None
        data = image.image.data
        # New content (no unfinished job in the ledger holds its key) is put at once: no HEAD round trip to
        # the bucket first. Content a job holds is looked up, since the bucket's lifecycle rule may have
        # expired it under a job the ledger still sees as unfinished.
        key = image.staged_key
        with span("cutout.staging", **{"cutout.staged.bytes": len(data)}):
            if not await self.ledger.staged_key_in_use(key) or await self.store.size(key) != len(data):
                await self.store.put(key, data, image.image.content_type)
                logger.info("Staged %s (%d bytes) for cutout.pro", image.label, len(data))
            return await self.store.signed_get_url(key)

    async def drop_uploads(self, images: Iterable[PlannedImage], *, keep_for_jobs: bool = True) -> None:
        """Delete the `get_upload_url` objects whose content is now staged under its own key; never raises.

        With `keep_for_jobs`, an upload whose content an unfinished video job holds is kept: the same call
        repeated with the same `upload:` reference (a retry after a timeout) reads the same content and gets
        that job back, free. `release_job` deletes it when the job finishes. An edit (answered at once) passes
        False."""
        for image in images:
            key = image.image.upload_key if image.image is not None else None
            if key is None or self.store is None:
                continue
            if keep_for_jobs and image.staged_key is not None and await self._in_use(image.staged_key):
                continue
            await self._delete(key, image.label)

    async def drop_upload_answered_by(self, image: PlannedImage, job_id: int) -> None:
        """An identical unfinished job `job_id` answered a call made from an upload: delete that upload unless
        it is the one the job was made from; never raises.

        No job records this upload, so nothing would delete it when the job finishes; its content is held by
        the job's own staged copy (and the job's own upload stays, for a repeated call)."""
        key = image.image.upload_key if image.image is not None else None
        if key is None or self.store is None:
            return
        try:
            owner = await self.ledger.owner(job_id)
            job = None if owner is None else await self.ledger.get_job(owner, job_id)
        except Exception:
            logger.warning("Could not read the source of video job %s; the upload is kept", job_id, exc_info=True)
            return
        if job is not None and upload_key(job.image_url) != key:
            await self._delete(key, image.label)

    async def _in_use(self, staged_key: str) -> bool:
        """Whether an unfinished job holds `staged_key`; True when the ledger cannot say (kept is safe: the
        bucket's lifecycle rule removes what is left)."""
        try:
            return await self.ledger.staged_key_in_use(staged_key)
        except Exception:
            logger.warning("Could not tell whether a staged image is in use; its upload is kept", exc_info=True)
            return True

    async def release(self, key: str) -> bool:
        """Delete the staged object `key` unless a job still needs it; never raises. False when the store or
        the ledger failed (the key stays recorded, so a later sweep retries it).

        Under the key's lock: a submit under way anywhere (its use mark) or an unfinished job keeps it."""
        if self.store is None or self._held[key] > 0:
            return True
        try:
            with anyio.fail_after(DELETE_SECONDS):
                lock = Guard(LOCK_PREFIX + key, self._holder())
                if not await self._lock(lock):
                    return True  # a submit is marking it: kept, and the next sweep looks again
                try:
                    if await self.ledger.guard_held(f"{USE_PREFIX}{key}:") or await self.ledger.staged_key_in_use(key):
                        await self.ledger.forget_staged(key)  # the job under way releases it when it finishes
                        return True
                    if not await self._delete(key, "a staged image"):
                        return False
                    await self.ledger.forget_staged(key)
                    return True
                finally:
                    with anyio.CancelScope(shield=True):
                        await self.ledger.release_guard(lock)
        except Exception:
            logger.warning("Could not release a staged image; the next sweep retries", exc_info=True)
            return False

    async def release_job(self, job_id: int) -> None:
        """A video job finished: release its staged image, if it has one."""
        if self.store is None:
            return
        try:
            key = await self.ledger.staged_key_of(job_id)
        except Exception:
            logger.warning("Could not read the staged image of video job %s", job_id, exc_info=True)
            return
        if key is not None:
            await self.release(key)
            await self._drop_upload_of(job_id)

    async def _drop_upload_of(self, job_id: int) -> None:
        """Delete the upload a finished video job was made from, unless an unfinished job was made from that same
        upload (its call, repeated, must still read it; that job's end deletes it). Another job holding the same
        content by another route does not keep it: nothing would delete it when that one ends."""
        try:
            owner = await self.ledger.owner(job_id)
            job = None if owner is None else await self.ledger.get_job(owner, job_id)
            upload = None if job is None else upload_key(job.image_url)
            if owner is None or job is None or upload is None or await self._made_from(owner, job.image_url):
                return
        except Exception:
            logger.warning("Could not read the source of video job %s", job_id, exc_info=True)
            return
        await self._delete(upload, job.image_url)

    async def _made_from(self, owner: str, image_url: str) -> bool:
        """Whether an unfinished job of `owner` was made from `image_url` (an `upload:` reference)."""
        for status in ACTIVE_STATUSES:
            jobs = await self.ledger.list_jobs(owner, status, limit=UNFINISHED_LOOKUP)
            if any(job.image_url == image_url for job in jobs):
                return True
        return False

    async def sweep(self) -> None:
        """Release what finished jobs still hold (after a restart, a failed delete, another replica's crash)."""
        if self.store is None:
            return
        try:
            keys = await self.ledger.finished_staged_keys()
        except Exception:
            logger.warning("Could not look for staged images to delete", exc_info=True)
            return
        with anyio.move_on_after(SWEEP_SECONDS):
            for key in keys:
                if not await self.release(key):
                    return  # the store or the ledger is failing: the next sweep tries again

    async def _delete(self, key: str, label: str) -> bool:
        assert self.store is not None
        try:
            with anyio.fail_after(DELETE_SECONDS):
                await self.store.delete(key)
        except Exception as exc:  # logged, never a reason to fail the call
            logger.warning("Could not delete %s from the staging store (%s)", label, type(exc).__name__)
            return False
        return True

    async def relabel(self, job: UpstreamVideoJob) -> UpstreamVideoJob:
        """Upstream echoes the URL it was given: a staged one is a credential, so show the source instead."""
        url, store = job.image_url, self.store
        if not url:
            return job
        staged = store is not None and url.startswith(store.origin.rstrip("/") + "/")
        if not staged and PRESIGNED.search(url) is None:  # presigned: staged by a server with another store
            return job
        label = STAGED_LABEL
        owner = await self.ledger.owner(job.id)
        if owner is not None:
            known = await self.ledger.get_job(owner, job.id)
            label = known.image_url if known is not None else label
        return job.model_copy(update={"image_url": label})
