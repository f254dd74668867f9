"""The S3 staging store against a real S3-compatible server (SeaweedFS with SigV4 on), not a mock.

What staging relies on: objects go in and come out byte for byte under the configured prefix; a
presigned GET serves exactly those bytes while the same URL unsigned, tampered with or expired is
refused; a presigned PUT accepts an upload and a tampered one does not; every failure is a
`StagingError` that names the bucket and the operation and never a credential or a signature.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from cutout_mcp.core.staging import StagingError

from .s3server import S3Server, presign

pytestmark = pytest.mark.anyio

obstore = pytest.importorskip("obstore", reason="obstore is not installed (pip install 'cutout-mcp[staging]')")

from cutout_mcp.core.staging.s3 import S3ObjectStore  # noqa: E402 - needs obstore

JPEG = b"\xff\xd8\xff\xe0" + os.urandom(3000)


def store_on(
    server: S3Server, prefix: str, *, ttl: int = 3600, secret: str | None = None, **extra: str
) -> S3ObjectStore:
    return S3ObjectStore(
        bucket=extra.pop("bucket", server.bucket),
        prefix=prefix,
        endpoint=extra.pop("endpoint", server.endpoint),
        region=server.region,
        ttl_seconds=ttl,
        access_key_id=server.credentials.access_key_id,
        secret_access_key=secret or server.credentials.secret_access_key,
        timeout=5.0,
    )


def tampered(url: str) -> str:
    """The same URL with the signature's last hex digit changed."""
    last = url[-1]
    return url[:-1] + ("0" if last != "0" else "1")


async def test_objects_go_in_and_come_out_byte_for_byte_under_the_prefix(s3_server: S3Server, s3_prefix: str) -> None:
    store = store_on(s3_server, s3_prefix)
    assert await store.size("staged/a.jpg") is None
    await store.put("staged/a.jpg", JPEG, "image/jpeg")
    assert await store.size("staged/a.jpg") == len(JPEG)
    assert await store.get("staged/a.jpg", max_bytes=len(JPEG)) == JPEG
    assert s3_server.object_keys(s3_prefix) == ["staged/a.jpg"]
    mine = [key for key in s3_server.object_keys() if s3_prefix in key]
    assert mine == [f"{s3_prefix}/staged/a.jpg"], "keys live under the configured prefix"

    await store.delete("staged/a.jpg")
    assert await store.size("staged/a.jpg") is None
    await store.delete("staged/a.jpg")  # already gone: not an error
    assert s3_server.object_keys(s3_prefix) == []


async def test_a_read_stops_one_byte_past_the_limit(s3_server: S3Server, s3_prefix: str) -> None:
    store = store_on(s3_server, s3_prefix)
    await store.put("big.png", JPEG, "image/png")
    assert await store.get("big.png", max_bytes=100) == JPEG[:101]
    with pytest.raises(StagingError, match="no such object"):
        await store.get("missing.png", max_bytes=100)


async def test_a_presigned_get_serves_exactly_the_bytes_and_nothing_else_is_accepted(
    s3_server: S3Server, s3_prefix: str
) -> None:
    store = store_on(s3_server, s3_prefix)
    await store.put("staged/cat.jpg", JPEG, "image/jpeg")
    await store.put("staged/other.jpg", b"other", "image/jpeg")
    url = await store.signed_get_url("staged/cat.jpg")
    assert url.startswith(store.origin + "/")
    assert store.origin == s3_server.endpoint
    async with httpx.AsyncClient() as http:
        served = await http.get(url)
        assert served.status_code == 200
        assert served.content == JPEG
        assert served.headers["content-type"] == "image/jpeg"

        assert (await http.get(url.split("?")[0])).status_code == 403, "unsigned"
        assert (await http.get(tampered(url))).status_code == 403, "signature changed"
        other = url.replace("/staged/cat.jpg?", "/staged/other.jpg?")
        assert (await http.get(other)).status_code == 403, "the signature of one object opens no other"

        path = f"/{s3_server.bucket}/{s3_prefix}/staged/cat.jpg"
        now = datetime.now(timezone.utc)
        fresh = presign(s3_server, "GET", path, signed_at=now, expires_in=60)
        assert (await http.get(fresh)).status_code == 200, "the test's own signer is right"
        expired = presign(s3_server, "GET", path, signed_at=now - timedelta(minutes=10), expires_in=60)
        assert (await http.get(expired)).status_code == 403, "expired"


async def test_a_presigned_get_lives_as_long_as_the_ttl(s3_server: S3Server, s3_prefix: str) -> None:
    url = await store_on(s3_server, s3_prefix, ttl=604800).signed_get_url("x.jpg")
    assert "X-Amz-Expires=604800&" in url


async def test_a_presigned_put_uploads_and_a_tampered_one_is_refused(s3_server: S3Server, s3_prefix: str) -> None:
    store = store_on(s3_server, s3_prefix)
    url = await store.signed_put_url("uploads/abc/cat.png", "image/png", 900)
    assert "X-Amz-Expires=900&" in url
    async with httpx.AsyncClient() as http:
        refused = await http.put(tampered(url), content=b"evil", headers={"Content-Type": "image/png"})
        assert refused.status_code == 403
        assert await store.size("uploads/abc/cat.png") is None
        moved = url.replace("/uploads/abc/cat.png?", "/uploads/abc/dog.png?")
        assert (await http.put(moved, content=b"evil")).status_code == 403
        done = await http.put(url, content=JPEG, headers={"Content-Type": "image/png"})
        assert done.status_code == 200
    assert await store.get("uploads/abc/cat.png", max_bytes=len(JPEG)) == JPEG
    assert s3_server.object_keys(s3_prefix) == ["uploads/abc/cat.png"]


def secrets_of(server: S3Server) -> list[str]:
    """What must never be shown: the secret key and any part of a signed request."""
    return [server.credentials.secret_access_key, "X-Amz-", "AWS4-HMAC", "Credential="]


async def test_wrong_credentials_are_a_staging_error_naming_the_bucket_not_the_secret(
    s3_server: S3Server, s3_prefix: str
) -> None:
    wrong = "Wrong" + s3_server.credentials.secret_access_key[5:]
    store = store_on(s3_server, s3_prefix, secret=wrong)
    with pytest.raises(StagingError) as caught:
        await store.put("a.jpg", JPEG, "image/jpeg")
    message = str(caught.value)
    assert s3_server.bucket in message
    assert "store an image in" in message
    assert "AWS_SECRET_ACCESS_KEY" in message
    assert "403" in message
    assert caught.value.__cause__ is None, "obstore's message quotes the store's answer: never chained"
    for secret in [wrong, *secrets_of(s3_server)]:
        assert secret not in message
    assert s3_server.object_keys(s3_prefix) == []


async def test_a_missing_bucket_and_an_unreachable_store_are_named(s3_server: S3Server, s3_prefix: str) -> None:
    with pytest.raises(StagingError, match=r"staging bucket no-such-bucket .*CUTOUT_STAGING_URL"):
        await store_on(s3_server, s3_prefix, bucket="no-such-bucket").put("a.jpg", JPEG, "image/jpeg")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
    store = store_on(s3_server, s3_prefix, endpoint=closed)
    with pytest.raises(StagingError, match="could not be reached; check AWS_ENDPOINT_URL") as caught:
        await store.size("a.jpg")
    assert s3_server.credentials.access_key_id not in str(caught.value)
