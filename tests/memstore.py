"""A small in-process object store implementing `core.staging.ObjectStore`, and images to stage with it."""

from __future__ import annotations

import io
import secrets

from cutout_mcp.core.staging import StagingError

ORIGIN = "https://bucket.store.test"
SIGNATURE = "X-Amz-Signature="


class MemoryStore:
    """Objects in a dict; presigned URLs carry a fresh signature each time, like S3's."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.puts: list[str] = []
        self.deletes: list[str] = []
        self.fail_deletes = False
        self.delete_attempts = 0
        self.signatures: list[str] = []

    @property
    def origin(self) -> str:
        return ORIGIN

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self.puts.append(key)
        self.objects[key] = (data, content_type)

    async def size(self, key: str) -> int | None:
        found = self.objects.get(key)
        return None if found is None else len(found[0])

    async def get(self, key: str, max_bytes: int) -> bytes:
        if key not in self.objects:
            raise StagingError(f"no object {key}")
        return self.objects[key][0][: max_bytes + 1]

    def _signed(self, key: str) -> str:
        signature = secrets.token_hex(16)
        self.signatures.append(signature)
        return f"{ORIGIN}/{key}?X-Amz-Expires=86400&{SIGNATURE}{signature}"

    async def signed_get_url(self, key: str) -> str:
        return self._signed(key)

    async def signed_put_url(self, key: str, content_type: str, expires_in_seconds: float) -> str:
        return self._signed(key)

    async def delete(self, key: str) -> None:
        self.delete_attempts += 1
        if self.fail_deletes:
            raise StagingError("the store is down")
        self.deletes.append(key)
        self.objects.pop(key, None)

    def staged(self) -> list[str]:
        return sorted(key for key in self.objects if key.startswith("staged/"))


def jpeg(width: int = 640, height: int = 480, color: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="JPEG", quality=80)
    return out.getvalue()


def png(width: int = 640, height: int = 480) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 90)).save(out, format="PNG")
    return out.getvalue()
