"""The operator's own S3-compatible bucket as an `ObjectStore`, over obstore.

obstore (Rust's `object_store` behind a small Python wheel) gives async put, head, get, delete and
presigned URLs for S3, Cloudflare R2, Google Cloud Storage's S3 interface and MinIO in one
dependency without a boto stack; it is an optional extra (`pip install 'cutout-mcp[staging]'`), imported
only when a bucket is configured.

Every obstore failure becomes a `StagingError` in one place (`_translated`), naming the bucket and
the operation and, where the store said so, its HTTP status and S3 error code. obstore's own message
is never passed on: it may quote the store's answer, and an S3 `SignatureDoesNotMatch` answer can
quote the access key id and the string that was signed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Literal, NoReturn

import obstore
from obstore.exceptions import BaseError, PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

from cutout_mcp.config.staging import origin_of
from cutout_mcp.core.staging import StagingError

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

    from cutout_mcp.config import Settings

CONNECT_SECONDS = 10.0
MAX_RETRIES = 2
"""Retries of a failed request (5xx, dropped connection); a tool call should not wait minutes on a store."""

_STATUS = re.compile(r"status code: (\d{3})")
_S3_CODE = re.compile(r"<Code>([A-Za-z]{1,64})</Code>")


class S3ObjectStore:
    """Objects under `prefix` in one bucket; presigned GET URLs live `ttl_seconds`."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        endpoint: str,
        region: str,
        ttl_seconds: int,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.bucket = bucket
        self.ttl_seconds = ttl_seconds
        self._static_credentials = bool(access_key_id and secret_access_key)
        self._origin = origin_of(endpoint)
        credentials = {
            "access_key_id": access_key_id,
            "secret_access_key": secret_access_key,
            "session_token": session_token,
        }
        client: ClientConfig = {
            "allow_http": self._origin.startswith("http://"),  # a loopback MinIO or SeaweedFS; chosen by the operator
            "connect_timeout": timedelta(seconds=min(CONNECT_SECONDS, timeout)),
            "timeout": timedelta(seconds=timeout),
        }
        retry: RetryConfig = {"max_retries": MAX_RETRIES, "retry_timeout": timedelta(seconds=timeout)}
        with self._translated("open the bucket"):
            self._store = S3Store(
                bucket,
                prefix=prefix or None,
                client_options=client,
                retry_config=retry,
                endpoint=endpoint,
                region=region,
                virtual_hosted_style_request=False,  # path style: every URL starts with the endpoint's origin
                **{name: value for name, value in credentials.items() if value},  # type: ignore[arg-type]
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ObjectStore:
        """The bucket CUTOUT_STAGING_URL names, with the AWS_* credentials (else obstore's own chain:
        web identity, container or instance credentials)."""
        where = settings.staging_bucket
        if where is None:
            raise StagingError("No staging bucket is configured: CUTOUT_STAGING_URL is not set.")
        secret, token = settings.aws_secret_access_key, settings.aws_session_token
        return cls(
            bucket=where.bucket,
            prefix=where.prefix,
            endpoint=where.endpoint,
            region=where.region,
            ttl_seconds=settings.staging_ttl,
            access_key_id=settings.aws_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            session_token=token.get_secret_value() if token else None,
            timeout=settings.http_timeout,
        )

    @property
    def origin(self) -> str:
        return self._origin

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        with self._translated("store an image in"):
            await obstore.put_async(
                self._store, key, data, attributes={"Content-Type": content_type}, use_multipart=False
            )

    async def size(self, key: str) -> int | None:
        with self._translated("look up an object in"):
            try:
                meta = await obstore.head_async(self._store, key)
            except FileNotFoundError:
                return None
        return int(meta["size"])

    async def get(self, key: str, max_bytes: int) -> bytes:
        with self._translated("read an object from"):
            try:
                result = await obstore.get_async(self._store, key)
            except FileNotFoundError:
                raise StagingError(
                    f"The staging bucket {self.bucket} has no such object (it may have expired)."
                ) from None
            if int(result.meta["size"]) <= max_bytes:
                return bytes(await result.bytes_async())
            got = bytearray()
            async for chunk in result.stream():
                got += memoryview(chunk)
                if len(got) > max_bytes:
                    break
            return bytes(got[: max_bytes + 1])

    async def signed_get_url(self, key: str) -> str:
        return await self._sign("GET", key, self.ttl_seconds)

    async def signed_put_url(self, key: str, content_type: str, expires_in_seconds: float) -> str:
        # obstore signs the method, path and host: the content type is checked when the upload is used
        return await self._sign("PUT", key, expires_in_seconds)

    async def delete(self, key: str) -> None:
        with self._translated("delete an object from"):
            await obstore.delete_async(self._store, key)  # S3 answers a delete of a missing object with success

    async def _sign(self, method: Literal["GET", "PUT"], key: str, seconds: float) -> str:
        with self._translated(f"sign a {method} URL for"):
            if self._static_credentials:  # signing is then a local computation (about 10 µs): no round trip
                url = obstore.sign(self._store, method, key, timedelta(seconds=seconds))
            else:  # credentials from web identity, a container or the instance may have to be fetched first
                url = await obstore.sign_async(self._store, method, key, timedelta(seconds=seconds))
        if not url.startswith(self._origin + "/"):
            raise StagingError(
                f"The staging bucket {self.bucket} gave a URL outside its origin {self._origin}; "
                "check AWS_ENDPOINT_URL."
            )
        return url

    @contextmanager
    def _translated(self, operation: str) -> Iterator[None]:
        """The one place an obstore failure becomes a `StagingError`."""
        try:
            yield
        except StagingError:
            raise
        except (BaseError, OSError, ValueError, RuntimeError) as exc:
            _raise_staging_error(self.bucket, operation, exc)


def _raise_staging_error(bucket: str, operation: str, exc: Exception) -> NoReturn:
    text = str(exc)
    found = [f"HTTP {m.group(1)}" for m in [_STATUS.search(text)] if m]
    found += [m.group(1) for m in [_S3_CODE.search(text)] if m]
    if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
        hint = "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY and that they may write to the bucket"
    elif "NoSuchBucket" in found:
        hint = "check the bucket name in CUTOUT_STAGING_URL"
    elif not found and re.search(r"connect|dns|resolve|timed out|timeout", text, re.IGNORECASE):
        hint = "the store could not be reached; check AWS_ENDPOINT_URL and the network"
        found.append("no answer")
    else:
        hint = "see the store's documentation for the status above"
    why = ", ".join(found) or type(exc).__name__
    # not chained: obstore's message may quote the store's answer, which can quote credentials
    raise StagingError(f"Could not {operation} the staging bucket {bucket} ({why}): {hint}.") from None
