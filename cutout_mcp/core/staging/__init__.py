"""Staging: where a local, inline or uploaded image is kept so that cutout.pro can fetch it.

cutout.pro fetches every input image itself, from a URL, and has no upload endpoint. An image that
is not already a public URL (a local path, a `data:` URI, an `upload:` reference) is checked here
first and then put in an `ObjectStore`: the operator's own bucket (`CUTOUT_STAGING_URL`, any
S3-compatible store) or, in sandbox mode, the sandbox's loopback origin. cutout.pro receives a
presigned GET URL for it.

Keys are relative to the store's configured prefix. A presigned URL is a credential: it is never
logged, recorded in the ledger or shown in a result (the image's source label is shown instead).

An upload made with `get_upload_url` is named by `upload:<key>`, where `<key>` is exactly its store key
(`uploads/<random>/<label>.<jpg|png>`): `upload_key` turns a reference back into that key, and refuses
anything else, so a reference can never name another object in the bucket.

`open_staging(settings)` opens the bucket `CUTOUT_STAGING_URL` names (`s3.S3ObjectStore`, over obstore,
an optional extra); `check_staging` refuses at start-up, naming the extra, when obstore is missing.
"""

from __future__ import annotations

import importlib.util
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Protocol

from cutout_mcp.config import ConfigError
from cutout_mcp.errors import CutoutMcpError

if TYPE_CHECKING:
    from cutout_mcp.config import Settings

STAGING_EXTRA = "pip install 'cutout-mcp[staging]' (in a checkout: pip install '.[staging]')"
UPLOAD_SCHEME = "upload:"
UPLOADS_PREFIX = "uploads/"
"""Where uploads live under the store's prefix; content-addressed staged copies live beside it."""
SETUP_HINT = (
    "set CUTOUT_STAGING_URL=s3://bucket/prefix and the bucket's credentials in AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY (plus AWS_ENDPOINT_URL for a store other than AWS S3, and AWS_REGION)"
)
"""What to set for staging, for any message that finds none configured."""
_UPLOAD_KEY = re.compile(r"uploads/[A-Za-z0-9_-]{32}/[A-Za-z0-9][A-Za-z0-9._-]{0,63}\.(?:jpg|png)")
_LABEL_JUNK = re.compile(r"[^A-Za-z0-9._-]+")


class StagingError(CutoutMcpError):
    """The object store could not be used; names the store and the operation, never a credential."""


class ObjectStore(Protocol):
    """The few operations staging needs; an S3-compatible bucket or the sandbox implements them."""

    @property
    def origin(self) -> str:
        """`scheme://host[:port]` that every URL handed out starts with; the pre-flight trusts exactly it."""
        ...

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key` (overwriting is harmless: keys are content-addressed)."""
        ...

    async def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when there is no such object."""
        ...

    async def get(self, key: str, max_bytes: int) -> bytes:
        """At most `max_bytes + 1` bytes of the object, so a caller can tell it is over the limit."""
        ...

    async def signed_get_url(self, key: str) -> str:
        """A presigned GET URL, valid for the store's TTL (`CUTOUT_STAGING_TTL`)."""
        ...

    async def signed_put_url(self, key: str, content_type: str, expires_in_seconds: float) -> str:
        """A presigned PUT URL that a client can upload `key` to (`get_upload_url`)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; an object already gone is not an error."""
        ...


def new_upload_key(filename: str, content_type: str) -> str:
    """A fresh, unguessable key under `uploads/` (192 random bits), labelled with the file's sanitised name.

    The extension comes from the content type, never from the name, which only labels the key."""
    extension = {"image/jpeg": "jpg", "image/png": "png"}[content_type]
    stem = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem.lstrip(".") else stem
    label = _LABEL_JUNK.sub("-", stem).strip("-._")[:64].rstrip("-._") or "image"
    return f"{UPLOADS_PREFIX}{secrets.token_urlsafe(24)}/{label}.{extension}"


def upload_reference(key: str) -> str:
    """What the paid tools are given for an upload: `upload:<key>`."""
    return UPLOAD_SCHEME + key


def upload_key(reference: str) -> str | None:
    """The store key an `upload:` reference names, or None when it is not one `get_upload_url` made."""
    key = reference.strip().removeprefix(UPLOAD_SCHEME)
    if not reference.strip().startswith(UPLOAD_SCHEME) or not _UPLOAD_KEY.fullmatch(key):
        return None
    return key


def check_staging(settings: Settings) -> None:
    """Refuse at start-up, naming the extra, when a staging bucket is set but obstore is missing."""
    if settings.staging_url is not None and importlib.util.find_spec("obstore") is None:
        raise ConfigError(
            "CUTOUT_STAGING_URL names a bucket for local and uploaded images, but obstore is not installed. "
            f"Install the staging extra: {STAGING_EXTRA}"
        )


@asynccontextmanager
async def open_staging(settings: Settings, given: ObjectStore | None = None) -> AsyncIterator[ObjectStore | None]:
    """The server's store: `given` (tests, the sandbox), the bucket CUTOUT_STAGING_URL names, or None."""
    if given is not None or settings.staging_url is None:
        yield given
        return
    check_staging(settings)
    from cutout_mcp.core.staging.s3 import S3ObjectStore

    yield S3ObjectStore.from_settings(settings)
