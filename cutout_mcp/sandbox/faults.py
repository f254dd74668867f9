"""Injected failures, queued per path, consumed one request at a time.

A fault on a POST fires by default *after* the request was processed and
charged: the request reached the service but its answer was lost, the case a
client must not answer by blindly resubmitting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import httpx

from cutout_mcp.sandbox.paths import API_PATHS

FaultKind = Literal["http_error", "slow", "malformed", "disconnect"]
FAULT_KINDS: tuple[FaultKind, ...] = ("http_error", "slow", "malformed", "disconnect")


class InjectedDisconnect(httpx.RemoteProtocolError):
    """Raised by the app after a truncated response to drop the connection.

    Under uvicorn the server closes the socket short of the announced
    Content-Length, so the client's httpx raises `RemoteProtocolError`; under
    `httpx.ASGITransport` this exception reaches the caller directly, and it
    is a `RemoteProtocolError` too, so client code sees the same error either way.
    """


@dataclass
class Fault:
    """One queued failure.

    `path` is an exact path, a prefix ending in `*`, or None for the three API
    endpoints. `after` None means "after processing for POST, before otherwise".
    """

    kind: FaultKind
    path: str | None = None
    count: int = 1
    status: int = 503
    delay: float = 5.0
    after: bool | None = None
    body: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, not {self.kind!r}")
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.kind == "http_error" and not 400 <= self.status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if self.delay < 0:
            raise ValueError("delay must not be negative")

    def matches(self, path: str) -> bool:
        if self.path is None:
            return path in API_PATHS
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path

    def fires_after(self, method: str) -> bool:
        return self.after if self.after is not None else method.upper() == "POST"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """Build from the control endpoint's JSON; `ValueError` for anything malformed."""
        if not isinstance(data, dict):
            raise ValueError("a fault must be a JSON object")
        known = {"kind", "path", "count", "status", "delay", "after", "body"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        kind = data.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        path = data.get("path")
        after = data.get("after")
        body = data.get("body")
        if path is not None and not isinstance(path, str):
            raise ValueError("path must be a string or null")
        if after is not None and not isinstance(after, bool):
            raise ValueError("after must be a boolean or null")
        if body is not None and not isinstance(body, str):
            raise ValueError("body must be a string or null")
        try:
            count = int(data.get("count", 1))
            status = int(data.get("status", 503))
            delay = float(data.get("delay", 5.0))
        except (TypeError, ValueError):
            raise ValueError("count, status and delay must be numbers") from None
        return cls(
            kind=cast(FaultKind, kind),
            path=path,
            count=count,
            status=status,
            delay=delay,
            after=after,
            body=body,
        )


class Faults:
    """The queue of pending faults; settable in-process or via `POST /__sandbox__/faults`."""

    def __init__(self) -> None:
        self._pending: list[Fault] = []
        self.fired = 0
        """How many requests a fault was applied to."""

    def add(self, fault: Fault) -> Fault:
        self._pending.append(fault)
        return fault

    def http_error(
        self,
        *,
        path: str | None = None,
        count: int = 1,
        status: int = 503,
        after: bool | None = None,
        body: str | None = None,
    ) -> Fault:
        """Answer with `status` and an HTML error page, like a gateway in trouble."""
        return self.add(Fault("http_error", path=path, count=count, status=status, after=after, body=body))

    def slow(self, delay: float, *, path: str | None = None, count: int = 1, after: bool | None = None) -> Fault:
        """Answer normally, `delay` seconds late (long enough to trip a client timeout)."""
        return self.add(Fault("slow", path=path, count=count, delay=delay, after=after))

    def malformed(
        self, *, path: str | None = None, count: int = 1, after: bool | None = None, body: str | None = None
    ) -> Fault:
        """Answer 200 with a body that is not JSON (truncated JSON by default)."""
        return self.add(Fault("malformed", path=path, count=count, after=after, body=body))

    def disconnect(self, *, path: str | None = None, count: int = 1, after: bool | None = None) -> Fault:
        """Start a response and drop the connection before its announced length is sent."""
        return self.add(Fault("disconnect", path=path, count=count, after=after))

    def take(self, path: str) -> Fault | None:
        """The first pending fault for `path`, used up by one request."""
        for fault in self._pending:
            if fault.matches(path):
                fault.count -= 1
                if fault.count == 0:
                    self._pending.remove(fault)
                self.fired += 1
                return fault
        return None

    def clear(self) -> None:
        self._pending.clear()

    @property
    def pending(self) -> list[Fault]:
        return list(self._pending)
