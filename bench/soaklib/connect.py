"""How the soak's clients reach the replicas: the official MCP client over streamable HTTP, with a
bearer token, each HTTP request sent to the next replica (a load balancer without affinity, which
retries the next replica only when a connection cannot even be opened: nothing was sent then).

A 2025-11-25 client (`legacy`) holds a session that lives in one replica's memory, so its requests stay
on one replica (as `ip_hash` does in docs/replicas.md) until that one cannot be reached; the session is
then gone, and the client connects again."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bench.soaklib.cluster import TOKENS
from tests.tasks_client import TasksClient


class Balancer(httpx2.AsyncBaseTransport):
    def __init__(self, ports: list[int], *, sticky: bool = False, first: int = 0) -> None:
        self._ports = ports
        self._sticky = sticky
        self._current = first % len(ports)
        self._next: Iterator[int] = itertools.cycle(range(len(ports)))
        self._inner = httpx2.AsyncHTTPTransport()

    def _pick(self, attempt: int) -> int:
        if self._sticky:
            if attempt:
                self._current = (self._current + 1) % len(self._ports)
            return self._ports[self._current]
        return self._ports[next(self._next)]

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        last: Exception | None = None
        for attempt in range(len(self._ports)):
            request.url = request.url.copy_with(port=self._pick(attempt))
            try:
                return await self._inner.handle_async_request(request)
            except httpx2.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    async def aclose(self) -> None:
        await self._inner.aclose()


@asynccontextmanager
async def connect(ports: list[int], principal: str, *, legacy: bool = False, first: int = 0) -> AsyncIterator[Client]:
    """A connected client as `principal`, its requests spread over `ports`; declares the tasks extension.

    `legacy`: the 2025-11-25 handshake, one session for the connection, on the replica `first` (or the next
    that answers). Otherwise the protocol the SDK negotiates (2026-07-28: every request stands alone)."""
    headers = {"Authorization": f"Bearer {TOKENS[principal]}"}
    timeout = httpx2.Timeout(30, read=60)
    balancer = Balancer(ports, sticky=legacy, first=first)
    async with httpx2.AsyncClient(transport=balancer, headers=headers, timeout=timeout) as http:
        url = f"http://127.0.0.1:{ports[0]}/mcp"
        transport = streamable_http_client(url, http_client=http)
        extensions = [TasksClient(sleep=anyio.sleep)]
        async with Client(transport, extensions=extensions, mode="legacy" if legacy else "auto") as client:
            yield client
