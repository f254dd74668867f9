"""CutoutClient: typed calls to the three cutout.pro endpoints.

One `httpx.AsyncClient` is shared by every call of a server. The envelope is
parsed in one place (`_call`), errors are translated by `errors`, and the
retry policy lives here because only the client knows whether a request
could have been charged:

- reads (getResult) are retried on transport errors, 429 and 5xx, with
  exponential backoff, full jitter and a bounded Retry-After; a 200 answer that
  is not the documented JSON is not (it is not a documented transient failure,
  and the next read would most likely get the same);
- every answer is streamed and read up to `MAX_ANSWER_BYTES`: the documented
  answers are a few KB, so a larger one is refused without being held in memory;
- a POST that costs credits is retried only when it provably never left
  (`NotSentError`). After a timeout, a dropped connection or a 5xx it is not:
  cutout.pro may have accepted it, and a second send could charge twice.

This module knows nothing of MCP.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import anyio
from opentelemetry.trace import Span, SpanKind, StatusCode
from pydantic import BaseModel, ValidationError

from cutout_mcp.config import Settings
from cutout_mcp.telemetry import NO_METRICS, Metrics, tracer
from cutout_mcp.upstream import errors
from cutout_mcp.upstream.http import build_client, connection_limits

if TYPE_CHECKING:
    import httpx

    from cutout_mcp.upstream.models import Envelope, UpstreamEditResult, UpstreamVideoJob

logger = logging.getLogger(__name__)

GENERATE_PATH = "/api/v2/imageToVideo/generate"
GET_RESULT_PATH = "/api/v2/imageToVideo/getResult"
EDIT_PATH = "/api/v1/image/edit"
ENDPOINT_OF_PATH = {GENERATE_PATH: "generate", GET_RESULT_PATH: "result", EDIT_PATH: "edit"}
"""Each endpoint's short name in metrics."""

_ModelT = TypeVar("_ModelT", bound=BaseModel)

MAX_CONNECTIONS = 100
"""Requests in flight at once; more wait for a free slot (bounded by the HTTP timeout, like httpx's pool)."""
MAX_ANSWER_BYTES = 1024 * 1024
"""The most of one answer that is read (the documented answers are a few KB; this is a wide margin)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is tried again."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 20.0

    def delay(self, retry_number: int, jitter: float, retry_after: float | None = None) -> float:
        """Seconds to wait before retry `retry_number` (0-based); `jitter` is in [0, 1)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return float(jitter * min(self.max_delay, self.base_delay * 2**retry_number))


class CutoutClient:
    """The upstream API, one method per endpoint."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        jitter: Callable[[], float] = random.random,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._api_key = settings.api_key
        self._metrics = metrics
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._jitter = jitter
        # Waiting requests queue here, not in httpcore's pool, which rescans every queued request against
        # every connection each time one finishes: with 500 video polls waiting that was 60% of the CPU.
        self._slots = anyio.Semaphore(MAX_CONNECTIONS)
        self._slot_timeout = settings.http_timeout
        self._base_url = settings.base_url
        parts = urlsplit(settings.base_url)  # spans name the URL without user info, query or key
        self._host = parts.hostname or ""
        self._plain_base = f"{parts.scheme}://{self._host}{f':{parts.port}' if parts.port else ''}{parts.path}"
        self._timeout = settings.http_timeout
        self._transport = transport
        self._http_client: httpx.AsyncClient | None = None

    @property
    def connection_limits(self) -> httpx.Limits:
        return connection_limits(MAX_CONNECTIONS)

    @property
    def _http(self) -> httpx.AsyncClient:
        """Made on the first request (`upstream.http`): reading the CA bundle is not something start-up need
        wait for. The key is a default header of this client only (the download client never sees it)."""
        if self._http_client is None:
            key = {} if self._api_key is None else {"APIKEY": self._api_key.get_secret_value()}
            self._http_client = build_client(
                timeout=self._timeout,
                connections=MAX_CONNECTIONS,
                transport=self._transport,
                headers=key,
                base_url=self._base_url,
            )
        return self._http_client

    async def __aenter__(self) -> CutoutClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http_client is not None:
            await self._http_client.aclose()

    @property
    def has_key(self) -> bool:
        return self._api_key is not None

    async def submit_video(self, image_url: str, prompt: str | None) -> int:
        """Start an image-to-video job (charges credits); returns its id."""
        body: dict[str, Any] = {"imageUrl": image_url}
        if prompt:
            body["prompt"] = prompt
        data = await self._call("POST", GENERATE_PATH, "submitting the video job", json=body, paid=True)
        if isinstance(data, bool) or not isinstance(data, int | str) or not str(data).isdigit():
            raise errors.malformed("submitting the video job", "no job id in the answer")
        return int(data)

    async def get_video(self, job_id: int) -> UpstreamVideoJob:
        from cutout_mcp.upstream.models import UpstreamVideoJob  # cutout.pro's shapes: with the first call

        data = await self._call(
            "GET", GET_RESULT_PATH, f"reading video job {job_id}", params={"id": str(job_id)}, paid=False
        )
        return self._parse(UpstreamVideoJob, data, f"reading video job {job_id}")

    async def edit_image(self, prompt: str, model: str, aspect_ratio: str, image_urls: list[str]) -> UpstreamEditResult:
        from cutout_mcp.upstream.models import UpstreamEditResult

        body = {"prompt": prompt, "model": model, "aspectRatios": aspect_ratio, "imageUrl": image_urls}
        data = await self._call("POST", EDIT_PATH, "editing the image", json=body, paid=True)
        return self._parse(UpstreamEditResult, data, "editing the image")

    @staticmethod
    def _parse(model: type[_ModelT], data: Any, what: str) -> _ModelT:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            fields = ", ".join(sorted({".".join(map(str, e["loc"])) or "data" for e in exc.errors()}))
            raise errors.malformed(what, f"unexpected fields: {fields}") from exc

    async def _call(self, method: str, path: str, what: str, *, paid: bool, **kwargs: Any) -> Any:
        """Send with the retry policy; return the envelope's `data`."""
        if self._api_key is None:
            raise errors.MissingApiKeyError()
        for retry_number in range(self._retry.attempts):
            try:
                return await self._send(method, path, what, **kwargs)
            except errors.CutoutError as exc:
                last_try = retry_number == self._retry.attempts - 1
                if last_try or not self._may_retry(exc, paid=paid):
                    raise
                retry_after = exc.retry_after if isinstance(exc, errors.RateLimitedError) else None
                delay = self._retry.delay(retry_number, self._jitter(), retry_after)
                logger.info("%s %s failed (%s); retrying in %.2fs", method, path, type(exc).__name__, delay)
                await self._sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    @staticmethod
    def _may_retry(exc: errors.CutoutError, *, paid: bool) -> bool:
        if paid:
            return isinstance(exc, errors.NotSentError)
        return exc.retryable_read

    async def _take_slot(self, what: str) -> None:
        """A connection slot; a free one is taken without setting up the timeout's cancel scope."""
        try:
            self._slots.acquire_nowait()
        except anyio.WouldBlock:
            pass
        else:
            return
        try:
            with anyio.fail_after(self._slot_timeout):
                await self._slots.acquire()
        except TimeoutError:
            import httpx

            raise errors.from_httpx_error(httpx.PoolTimeout("no free connection slot"), what) from None

    async def _send(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        import httpx  # imported with the first request, not at start-up

        assert self._api_key is not None
        await self._take_slot(what)
        try:
            with self._observed(method, path) as observe:
                status, headers, body = await self._exchange(method, path, **kwargs)
                observe(status)
        except httpx.HTTPError as exc:
            # Not chained: an httpx error holds its request, whose headers carry the API key.
            raise errors.from_httpx_error(exc, what) from None
        finally:
            self._slots.release()
        logger.debug("%s %s -> HTTP %s", method, path, status)
        envelope = None if body is None else _read_envelope(body)
        request_id = envelope.request_id if envelope else None
        if status != 200:
            raise errors.from_http_status(status, headers, what, request_id)
        if body is None:
            raise errors.oversized(what, MAX_ANSWER_BYTES)
        if envelope is None:
            raise errors.malformed(what, f"not JSON ({headers.get('content-type', 'no content type')})")
        if envelope.code != 0:
            # Upstream text reaches the user; should it ever echo the key, the key stays out.
            key = self._api_key.get_secret_value()
            msg = envelope.msg.replace(key, "[REDACTED]") if envelope.msg else envelope.msg
            raise errors.from_envelope(envelope.code, msg, what, request_id)
        return envelope.data

    @contextmanager
    def _observed(self, method: str, path: str) -> Iterator[Callable[[int], None]]:
        """The one place a request to cutout.pro is timed and traced: a client span (method, the URL without
        query or key, the status) and the upstream histogram; yields the function that notes the status."""
        attributes = {"http.request.method": method, "url.full": self._plain_base + path, "server.address": self._host}
        seen: list[int] = []
        began = time.perf_counter()
        with tracer.start_as_current_span(
            f"{method} {path}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield seen.append
            except BaseException as exc:
                _note_failure(span, exc)
                raise
            finally:
                status = str(seen[0]) if seen else "error"
                if seen:
                    span.set_attribute("http.response.status_code", seen[0])
                    if seen[0] >= 400:
                        span.set_status(StatusCode.ERROR)
                        span.set_attribute("error.type", status)
                self._metrics.upstream_request(ENDPOINT_OF_PATH.get(path, "other"), status, time.perf_counter() - began)

    async def _exchange(self, method: str, path: str, **kwargs: Any) -> tuple[int, httpx.Headers, bytes | None]:
        """The answer's status, headers and body, the body None when it is over `MAX_ANSWER_BYTES`.

        Streamed, so an oversized answer is never held whole: reading stops at the cap and the
        connection is closed rather than drained.
        """
        async with self._http.stream(method, path, **kwargs) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
                return response.status_code, response.headers, None
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    return response.status_code, response.headers, None
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)


def _note_failure(span: Span, exc: BaseException) -> None:
    """A request that got no answer: its error class only (an httpx message can hold the URL)."""
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(StatusCode.ERROR)


def _read_envelope(body: bytes) -> Envelope | None:
    from cutout_mcp.upstream.models import Envelope

    try:
        return Envelope.model_validate_json(body)
    except ValidationError:
        return None
