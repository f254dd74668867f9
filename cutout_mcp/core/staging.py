"""Staging: where a local, inline or uploaded image is kept so that cutout.pro can fetch it.

cutout.pro fetches every input image itself, from a URL, and has no upload endpoint. An image that
is not already a public URL (a local path, a `data:` URI, an `upload:` reference) is checked here
first and then put in an `ObjectStore`: the operator's own bucket (`CUTOUT_STAGING_URL`, any
S3-compatible store) or, in sandbox mode, the sandbox's loopback origin. cutout.pro receives a
presigned GET URL for it.

Keys are relative to the store's configured prefix. A presigned URL is a credential: it is never
logged, recorded in the ledger or shown in a result (the image's source label is shown instead).
"""

from __future__ import annotations

from typing import Protocol

from cutout_mcp.errors import CutoutMcpError


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
