"""The one path every paid call takes: principal → dedupe guard → consent → budget reserve → send → release or
record.

Credits are real money, so the order matters and lives here once:

- an identical unfinished request (when the tool names one) is returned free instead of paying again;
- a spend that `CUTOUT_CONFIRM_SPEND` says must be confirmed, and that the caller's `Consent` does not
  cover, is refused before anything is reserved or sent (`core.consent`);
- the charge is reserved in the ledger *before* the request leaves, so the budget check and the spend
  are one transaction; a ledger that cannot be written stops the call before anything is sent;
- a failure that proves cutout.pro did not charge releases the reservation; any other failure keeps it
  counted (`CutoutError.may_have_charged`);
- once cutout.pro answered, the result always reaches the caller: if the ledger cannot record it, the
  result says so instead of pretending nothing happened.

The whole sequence is shielded from cancellation: once the request may have left, its outcome must be
settled whatever the caller does.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio

from cutout_mcp.core.consent import Consent, check_consent
from cutout_mcp.core.ledger import ChargeKind, Ledger, StorageError
from cutout_mcp.core.locks import KeyedLocks
from cutout_mcp.upstream.errors import CutoutError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class LedgerUnavailableError(StorageError):
    """The ledger could not reserve the charge, so nothing was sent to cutout.pro."""

    def __init__(self, cause: StorageError) -> None:
        super().__init__(f"{cause} Nothing was sent to cutout.pro or charged.")


@dataclass(frozen=True)
class Dedupe(Generic[T]):
    """How a tool recognises an identical request that is still unfinished."""

    key: Hashable
    find: Callable[[], Awaitable[T | None]]


@dataclass(frozen=True)
class Paid(Generic[T]):
    value: T
    credits: int
    """What this call cost: 0 when an identical unfinished request was returned instead."""
    ledger_problem: str | None = None
    """Set when cutout.pro answered but the ledger could not record it; the caller must say so."""


@dataclass
class PaidCalls:
    """The ledger, the budget and the per-request guards every paid tool shares."""

    ledger: Ledger
    budget: int | None
    guards: KeyedLocks
    confirm_above: int | None = None
    """The spend confirmation rule (`Settings.confirm_spend_above`); None never asks."""

    async def call(
        self,
        principal: str,
        kind: ChargeKind,
        credits: int,
        send: Callable[[], Awaitable[T]],
        record: Callable[[int, T], Awaitable[None]],
        *,
        dedupe: Dedupe[T] | None = None,
        consent: Consent | None = None,
    ) -> Paid[T]:
        """Pay for `send()` once, with `record(charge, value)` tying the charge to what it bought."""
        if dedupe is None:
            check_consent(self.confirm_above, credits, consent)
            return await self._pay(principal, kind, credits, send, record)
        async with self.guards.hold((principal, dedupe.key)):
            existing = await dedupe.find()
            if existing is not None:
                return Paid(existing, 0)
            check_consent(self.confirm_above, credits, consent)
            return await self._pay(principal, kind, credits, send, record)

    async def _pay(
        self,
        principal: str,
        kind: ChargeKind,
        credits: int,
        send: Callable[[], Awaitable[T]],
        record: Callable[[int, T], Awaitable[None]],
    ) -> Paid[T]:
        with anyio.CancelScope(shield=True):
            try:
                charge = await self.ledger.reserve(principal, kind, credits, self.budget)
            except StorageError as exc:
                raise LedgerUnavailableError(exc) from exc
            try:
                value = await send()
            except CutoutError as exc:
                if not exc.may_have_charged:
                    await self.ledger.release(charge)
                raise
            try:
                await record(charge, value)
            except StorageError as exc:
                logger.exception("A paid %s call succeeded but could not be written to the ledger", kind)
                problem = f"Recording this paid call failed, so the result is only in this answer: {exc}"
                return Paid(value, credits, problem)
        return Paid(value, credits)
