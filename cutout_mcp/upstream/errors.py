"""Every way a cutout.pro call can fail, as one tree of exceptions.

```
CutoutError
├── MissingApiKeyError         no CUTOUT_API_KEY configured
├── RequestError               no answer came back
│   ├── NotSentError           provably never reached cutout.pro (DNS, refused): safe to resend
│   └── NoAnswerError          may have reached it (timeout, dropped): never resend a paid POST
└── UpstreamError              cutout.pro answered with a failure
    ├── AuthenticationError    HTTP 401/403: the key is wrong or revoked
    ├── RateLimitedError       HTTP 429
    ├── ServiceError           HTTP 5xx or code 1001 "server is abnormal"
    ├── InsufficientCreditsError  "Insufficient balance"
    ├── ContentRejectedError   code 9011
    ├── JobNotFoundError       code 4002
    ├── MalformedResponseError not the documented JSON envelope (not retried)
    │   └── OversizedAnswerError  larger than the client reads (1 MiB)
    └── RejectedError          any other code or HTTP 4xx
```

Each error carries a message a person can act on; `UpstreamError` keeps the
upstream `requestId` for support. Errors never hold the API key: it travels
only in a request header, and this module builds messages from status codes,
upstream messages and URLs without query strings.

`from_httpx_error`, `from_http_status` and `from_envelope` are the only
places lower-level failures are translated, and `CutoutClient._send` the only
caller of each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from cutout_mcp.errors import CutoutMcpError

if TYPE_CHECKING:
    import httpx


class CutoutError(CutoutMcpError):
    """Base of every failure this package reports about cutout.pro."""

    retryable_read: bool = False
    """Whether a read (getResult) may simply be tried again."""
    may_have_charged: bool = False
    """Whether a paid POST that failed this way may still have reached cutout.pro and been charged."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class MissingApiKeyError(CutoutError):
    def __init__(self) -> None:
        super().__init__(
            "No cutout.pro API key is configured.",
            hint="Set the CUTOUT_API_KEY environment variable in this server's configuration "
            "(get a key at https://www.cutout.pro/user/secret-key) and restart the server.",
        )


class RequestError(CutoutError):
    """The request got no usable answer."""

    retryable_read = True


class NotSentError(RequestError):
    """The connection was never made, so cutout.pro never saw the request."""


class NoAnswerError(RequestError):
    """The request may have reached cutout.pro but its answer was lost."""

    may_have_charged = True


class UpstreamError(CutoutError):
    """cutout.pro answered, and the answer is a failure."""

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        status_code: int | None = None,
        code: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status_code = status_code
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (cutout.pro request id {self.request_id})" if self.request_id else text


class AuthenticationError(UpstreamError):
    pass


class RateLimitedError(UpstreamError):
    retryable_read = True
    retry_after: float | None = None
    """Seconds cutout.pro asked to wait (its Retry-After header), when it said."""


class ServiceError(UpstreamError):
    retryable_read = True
    may_have_charged = True


class InsufficientCreditsError(UpstreamError):
    pass


class ContentRejectedError(UpstreamError):
    pass


class JobNotFoundError(UpstreamError):
    pass


class MalformedResponseError(UpstreamError):
    """A 200 answer that is not the documented JSON: not retried, since nothing says the next would differ."""

    may_have_charged = True


class OversizedAnswerError(MalformedResponseError):
    """An answer larger than the client reads (`client.MAX_ANSWER_BYTES`); it was not held in memory."""


class RejectedError(UpstreamError):
    pass


class _Where(TypedDict):
    status_code: int | None
    code: int | None
    request_id: str | None


CONTENT_REJECTED = 9011
SERVER_ABNORMAL = 1001
JOB_NOT_FOUND = 4002
_INSUFFICIENT_BALANCE = "insufficient balance"


def from_httpx_error(exc: httpx.HTTPError, what: str) -> RequestError:
    """Translate a transport failure; `what` names the call ("submitting the video job")."""
    import httpx  # imported when first used, like every httpx import of the server (start-up needs none)

    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout | httpx.ConnectError | httpx.UnsupportedProtocol):
        return NotSentError(
            f"Could not connect to cutout.pro while {what}: {type(exc).__name__}.",
            hint="Nothing was sent or charged. Check the network or CUTOUT_BASE_URL and try again.",
        )
    if isinstance(exc, httpx.TimeoutException):
        return NoAnswerError(
            f"cutout.pro did not answer in time while {what}.",
            hint="The request may still have been processed; raise CUTOUT_HTTP_TIMEOUT if this repeats.",
        )
    return NoAnswerError(
        f"The connection to cutout.pro failed while {what}: {type(exc).__name__}.",
        hint="The request may still have been processed.",
    )


def _retry_after_seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def from_http_status(
    status: int, headers: httpx.Headers | dict[str, str], what: str, request_id: str | None = None
) -> UpstreamError:
    """The error for an HTTP status other than 200."""
    import httpx

    common = _Where(status_code=status, code=None, request_id=request_id)
    if status in (401, 403):
        return AuthenticationError(
            f"cutout.pro refused the API key (HTTP {status}) while {what}.",
            hint="Check CUTOUT_API_KEY: it must be the key from https://www.cutout.pro/user/secret-key.",
            **common,
        )
    if status == 429:
        error = RateLimitedError(
            f"cutout.pro is rate limiting requests (HTTP 429) while {what}.",
            hint="Wait a little and try again.",
            **common,
        )
        error.retry_after = _retry_after_seconds(httpx.Headers(headers).get("retry-after"))
        return error
    if status >= 500:
        return ServiceError(
            f"cutout.pro is having trouble (HTTP {status}) while {what}.",
            hint="Try again in a minute.",
            **common,
        )
    return RejectedError(
        f"cutout.pro rejected the request (HTTP {status}) while {what}.",
        **common,
    )


def from_envelope(code: int, msg: str | None, what: str, request_id: str | None) -> UpstreamError:
    """The error for an HTTP 200 envelope whose `code` is not 0."""
    upstream = (msg or "").strip()
    common = _Where(status_code=200, code=code, request_id=request_id)
    if _INSUFFICIENT_BALANCE in upstream.lower():
        return InsufficientCreditsError(
            f"Your cutout.pro account has too few credits for this call (code {code}: {upstream}).",
            hint="Top up credits at https://www.cutout.pro/pricing, then try again.",
            **common,
        )
    if code == CONTENT_REJECTED:
        return ContentRejectedError(
            f"cutout.pro rejected the image as inappropriate content (code {code}).",
            hint="Use a different image; this one will be rejected again.",
            **common,
        )
    if code == JOB_NOT_FOUND:
        return JobNotFoundError(
            f"cutout.pro has no job with this id (code {code}).",
            hint="Check the id: use the exact id generate_video returned.",
            **common,
        )
    if code == SERVER_ABNORMAL:
        return ServiceError(
            f"cutout.pro reported a server problem while {what} (code {code}: {upstream or 'no message'}).",
            hint="Try again later; contact cutout.pro support with the request id if it persists.",
            **common,
        )
    return RejectedError(
        f"cutout.pro refused the request while {what} (code {code}: {upstream or 'no message'}).",
        **common,
    )


def malformed(what: str, detail: str, request_id: str | None = None, status_code: int = 200) -> MalformedResponseError:
    return MalformedResponseError(
        f"cutout.pro sent an answer this server cannot read while {what} ({detail}).",
        hint="This is usually temporary; try again, and check CUTOUT_BASE_URL if it persists.",
        status_code=status_code,
        request_id=request_id,
    )


def oversized(what: str, cap: int) -> OversizedAnswerError:
    return OversizedAnswerError(
        f"cutout.pro sent an answer larger than {cap / (1024 * 1024):g} MiB while {what}; the documented answers are a "
        "few KB, so it was not read",
        hint="Check CUTOUT_BASE_URL (a proxy or captive portal may be answering instead); the next call is unaffected.",
        status_code=200,
    )
