"""The staging bucket's settings: `CUTOUT_STAGING_URL`, and where its URLs start.

The bucket is any S3-compatible store, reached with the standard `AWS_*` variables its users already set
(AWS S3, Cloudflare R2, Google Cloud Storage's S3 interface, MinIO). Requests are path-style, so every
URL the store hands out starts with one origin: `AWS_ENDPOINT_URL`'s, or AWS's regional endpoint. That
origin, and no other, is trusted for images (`Settings.trusted_image_origins`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_STAGING_TTL = 24 * 60 * 60
MAX_STAGING_TTL = 7 * 24 * 60 * 60
"""SigV4 presigned URLs live at most 7 days."""
DEFAULT_REGION = "us-east-1"

_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9!_.*'()=+,;@-]+")
_REGION = re.compile(r"[a-z0-9-]{1,64}")


@dataclass(frozen=True)
class StagingBucket:
    """Where staged images go: `bucket` at `endpoint` (path-style), keys under `prefix`."""

    bucket: str
    prefix: str
    endpoint: str
    region: str

    @property
    def origin(self) -> str:
        """`scheme://host[:port]` of every URL the store hands out."""
        return origin_of(self.endpoint)


def check_staging_url(value: str) -> str:
    """`s3://bucket[/prefix]`, normalised (no trailing slash); a ValueError names what is wrong."""
    parts = urlsplit(value.strip())
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError("must be s3://bucket/prefix (an S3-compatible bucket and a folder in it for staged images)")
    if parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
        raise ValueError("must be s3://bucket/prefix, without credentials, a port, a query or a fragment")
    if not _BUCKET.fullmatch(parts.netloc):
        raise ValueError(f"{parts.netloc!r} is not a bucket name (3-222 lowercase letters, digits, '.', '-', '_')")
    segments = [segment for segment in parts.path.split("/") if segment]
    for segment in segments:
        if segment in (".", "..") or not _PREFIX_SEGMENT.fullmatch(segment):
            raise ValueError(f"the prefix segment {segment!r} is not allowed (letters, digits and !_.*'()=+,;@-)")
    return f"s3://{parts.netloc}" + "".join(f"/{segment}" for segment in segments)


def check_endpoint(value: str) -> str:
    """An http(s) URL of an S3 API (`AWS_ENDPOINT_URL`), without a trailing slash."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be the store's http(s) URL, e.g. https://ACCOUNT.r2.cloudflarestorage.com")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError("must be a plain http(s) URL, without credentials, a query or a fragment")
    parts.port  # noqa: B018 - parsing the port is the check
    return value.strip().rstrip("/")


def check_region(value: str) -> str:
    if not _REGION.fullmatch(value.strip()):
        raise ValueError("must be a region name such as us-east-1, auto (R2) or eu-west-3")
    return value.strip()


def staging_bucket(url: str, endpoint: str | None, region: str | None) -> StagingBucket:
    """The bucket a checked `CUTOUT_STAGING_URL` names, at `endpoint` (default: AWS's, in `region`)."""
    parts = urlsplit(url)
    region = region or DEFAULT_REGION
    return StagingBucket(
        bucket=parts.netloc,
        prefix=parts.path.strip("/"),
        endpoint=endpoint or f"https://s3.{region}.amazonaws.com",
        region=region,
    )


def origin_of(url: str) -> str:
    """`scheme://host[:port]`, lower case, without a default port (as URLs are written)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port is not None and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"
