"""`/healthz` and `/readyz`: whether the process serves, and whether it should be sent calls.

Both answer without authentication (a probe has no token) and without a Host check (a probe uses the
pod's address), so they say nothing an attacker could use: no database host, path or error text, only
`ok` or a short fixed reason. Ready means the ledger answered a trivial read within `LEDGER_SECONDS`
and no drain is under way (`core.money.drain`): during a database outage or a SIGTERM drain a balancer stops
sending calls this replica could only refuse, while the calls in flight still answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cutout_mcp.core.money.drain import Drain
from cutout_mcp.core.storage import Storage, StorageError

LEDGER_SECONDS = 1.0
"""The longest the readiness check waits for the ledger: a dead database makes it 503, not a hang."""


@dataclass
class Readiness:
    """The drain and the ledger the checks look at (the ledger is set once the server has opened it)."""

    drain: Drain
    ledger: Storage | None = None
    _lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def ledger_state(self) -> str:
        """`ok`, or a short reason that names no host, path or secret."""
        ledger = self.ledger
        if ledger is None:
            return "not open yet"
        try:
            with anyio.fail_after(LEDGER_SECONDS):
                async with self._lock:  # probes that pile up on a slow ledger wait on one ping, not many
                    await ledger.ping()
        except TimeoutError:
            return f"no answer within {LEDGER_SECONDS:g} s"
        except StorageError:
            return "unavailable"
        return "ok"

    async def healthz(self, _: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    async def readyz(self, _: Request) -> JSONResponse:
        draining = self.drain.stopping
        ledger = "skipped: draining" if draining else await self.ledger_state()
        ready = ledger == "ok" and not draining
        body = {"status": "ready" if ready else "not ready", "checks": {"ledger": ledger, "draining": draining}}
        return JSONResponse(body, status_code=200 if ready else 503, headers=_NO_STORE)

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET", "HEAD"]),
            Route("/readyz", self.readyz, methods=["GET", "HEAD"]),
        ]


_NO_STORE = {"Cache-Control": "no-store"}
