"""A scripted network for the pre-flight tests: fake DNS answers and canned HTTP responses.

Nothing here touches the real network. `FakeNetwork` stands in for the socket
layer below the SSRF guard, so the guard's resolve-check-connect runs for
real and the tests can see which address it connected to.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

import httpcore
from PIL import Image

from cutout_mcp.core.inputs.netguard import ResolutionError


class FakeDNS:
    """Answers per host name; a list of answers is served one per lookup (the last one repeats)."""

    def __init__(self, answers: dict[str, list[list[str]] | list[str]]) -> None:
        self._answers = {
            host: [value] if value and isinstance(value[0], str) else list(value)  # type: ignore[list-item]
            for host, value in answers.items()
        }
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        queue = self._answers.get(host)
        if not queue:
            raise ResolutionError(f"{host} could not be resolved (no such host)")
        return queue.pop(0) if len(queue) > 1 else queue[0]


class FakeNetwork(httpcore.AsyncNetworkBackend):
    """Serves canned raw HTTP responses per IP address and records every connection."""

    def __init__(self, sites: dict[str, bytes | list[bytes]]) -> None:
        self._sites = sites
        self.connections: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connections.append((host, port))
        if host not in self._sites:
            raise httpcore.ConnectError(f"connection refused by {host}")
        body = self._sites[host]
        return httpcore.AsyncMockStream(list(body) if isinstance(body, list) else [body])

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - not used by HTTP/1.1
        pass


def http_response(
    body: bytes = b"",
    *,
    status: str = "200 OK",
    content_type: str = "image/png",
    length: int | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A raw HTTP/1.1 response; `length` overrides Content-Length (the body is not padded)."""
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}"]
    lines.append(f"Content-Length: {len(body) if length is None else length}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked_response(chunks: Iterable[bytes], content_type: str = "image/png") -> list[bytes]:
    """A raw HTTP/1.1 chunked response with no declared size, as a list of reads."""
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    parts = [head]
    parts += [f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks]
    parts.append(b"0\r\n\r\n")
    return parts


def redirect(location: str, status: str = "302 Found") -> bytes:
    return http_response(b"", status=status, content_type="text/html", headers={"Location": location})


def image_bytes(width: int, height: int, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, fmt)
    return buffer.getvalue()
