"""How the soak's clients reach the replicas: the official MCP client over streamable HTTP, with a
bearer token, each HTTP request sent to the next replica (a load balancer without affinity, which
retries the next replica only when a connection cannot even be opened: nothing was sent then)."""

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
    def __init__(self, ports: list[int]) -> None:
        self._ports = ports
        self._next: Iterator[int] = itertools.cycle(range(len(ports)))
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        last: Exception | None = None
        for _ in self._ports:
            request.url = request.url.copy_with(port=self._ports[next(self._next)])
            try:
                return await self._inner.handle_async_request(request)
            except httpx2.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    async def aclose(self) -> None:
        await self._inner.aclose()


@asynccontextmanager
async def connect(ports: list[int], principal: str) -> AsyncIterator[Client]:
    """A connected client as `principal`, its requests spread over `ports`; declares the tasks extension."""
    headers = {"Authorization": f"Bearer {TOKENS[principal]}"}
    timeout = httpx2.Timeout(30, read=60)
    async with httpx2.AsyncClient(transport=Balancer(ports), headers=headers, timeout=timeout) as http:
        url = f"http://127.0.0.1:{ports[0]}/mcp"
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, extensions=[TasksClient(sleep=anyio.sleep)]) as client:
            yield client
