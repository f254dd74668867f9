"""The one path every paid call takes: principal → dedupe guard → consent → budget and allowance reserve →
send → release or record.

Credits are real money, so the order matters and lives here once:

- an identical unfinished request (when the tool names one) is returned free instead of paying again,
  whichever process or replica receives the calls: the request's guard (`Storage.claim_guard`) is
  claimed in the shared storage before the check, and held until the job is recorded; identical calls
  in one process queue on an in-process lock in front of it (`KeyedLocks`), calls in other processes
  poll the guard (bounded) and then find the recorded job;
- a guard whose holder died is taken over at once when its process is known to be gone (same machine:
  its pid no longer runs, or the machine rebooted; `core.money.owners`), else once its lease runs out; if that
  holder (or any earlier identical call) reserved a charge and never recorded what it bought,
  cutout.pro may have been paid for a job whose id is lost, so the call is refused
  (`UnrecordedChargeError`) instead of paying again silently, for `UNRECORDED_WINDOW` seconds;
  `force_new` pays regardless;
- a spend that `CUTOUT_CONFIRM_SPEND` says must be confirmed, and that the caller's `Consent` does not
  cover, is refused before anything is reserved or sent (`core.money.consent`);
- the charge is reserved in the ledger *before* the request leaves, so the budget check, the caller's
  allowance, session cap and rate (`CUTOUT_ALLOWANCES_FILE`, `core.storage.limits`) and the spend are one
  transaction; a ledger that cannot be written stops the call before anything is sent;
- a failure that proves cutout.pro did not charge releases the reservation; any other failure keeps it
  counted (`CutoutError.may_have_charged`);
- once cutout.pro answered, the result always reaches the caller: if the ledger cannot record it, the
  result says so instead of pretending nothing happened.

The whole sequence is shielded from cancellation: once the request may have left, its outcome must be
settled whatever the caller does.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio

from cutout_mcp.clock import Clock, iso_utc
from cutout_mcp.config.allowances import AllowancePolicy
from cutout_mcp.core.money.consent import Consent, check_consent
from cutout_mcp.core.money.locks import KeyedLocks
from cutout_mcp.core.money.owners import THIS_PROCESS, is_dead
from cutout_mcp.core.storage import ChargeKind, Guard, Storage, StorageError, Unrecorded
from cutout_mcp.core.storage.limits import CallLimits, call_limits
from cutout_mcp.errors import CutoutMcpError
from cutout_mcp.telemetry import NO_METRICS, TOOL_OF_KIND, Metrics, span
from cutout_mcp.upstream.errors import CutoutError

logger = logging.getLogger(__name__)

T = TypeVar("T")

UNRECORDED_WINDOW = 15 * 60.0
"""How long an unrecorded charge stops identical calls: longer than a video job usually stays unfinished."""
GUARD_POLL_FIRST, GUARD_POLL_MAX = 0.05, 1.0
"""Seconds between two looks at a guard another process holds (doubling up to the maximum)."""

PROCESS_ID = str(THIS_PROCESS)
"""Names this server process in guard and task leases: machine, pid, boot id and a token (`core.money.owners`)."""


class LedgerUnavailableError(StorageError):
    """The ledger could not reserve the charge, so nothing was sent to cutout.pro."""

    def __init__(self, cause: StorageError) -> None:
        super().__init__(f"{cause} Nothing was sent to cutout.pro or charged.")


class UnrecordedChargeError(CutoutMcpError):
    """An identical earlier request may have been charged without its result being recorded."""

    def __init__(self, found: Unrecorded, now: float) -> None:
        minutes = max(1, round((now - found.reserved_at) / 60))
        super().__init__(
            f"Not sent: an identical request (same image and prompt) made about {minutes} min ago may have been "
            "charged by cutout.pro, but its job id was never recorded (its server process stopped, or its answer "
            "was lost). Nothing was sent or charged now, so you are not charged twice. To find that job: it was sent "
            f"at {iso_utc(found.reserved_at)}, and your cutout.pro account (https://www.cutout.pro, signed in) lists "
            "the credits it spent; list_video_jobs shows every job this server recorded. If a video is still wanted, "
            "call generate_video with force_new=true (a new job, charged again)."
        )
        self.charge = found.charge


class GuardBusyError(CutoutMcpError):
    """Another process kept submitting the identical request for longer than this call waits."""


@dataclass(frozen=True)
class Dedupe(Generic[T]):
    """How a tool recognises an identical request that is still unfinished."""

    key: Hashable
    find: Callable[[], Awaitable[T | None]]


LIMITS_REMEMBERED = 4096
"""Callers' limits kept by `PaidCalls.limits` (one per caller and session) before they are all forgotten."""


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

    ledger: Storage
    budget: int | None
    clock: Clock
    guard_lease: float = 90.0
    """Seconds a guard stays claimed without its holder: longer than any submit (see `open_context`)."""
    confirm_above: int | None = None
    """The spend confirmation rule (`Settings.confirm_spend_above`); None never asks."""
    policy: AllowancePolicy | None = None
    """Allowances per caller, session caps and rates (`config.allowances`); None: only the budget."""
    guards: KeyedLocks = field(default_factory=KeyedLocks)
    metrics: Metrics = NO_METRICS
    """Counts the credits whose charge stays in the ledger (`credits_spent`)."""
    _calls: itertools.count[int] = field(default_factory=itertools.count)
    _limits: dict[tuple[str, str | None], CallLimits] = field(default_factory=dict)

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
        session: str | None = None,
        model: str = "",
        detail: str | None = None,
    ) -> Paid[T]:
        """Pay for `send()` once, with `record(charge, value)` tying the charge to what it bought.

        `session` is the key of the caller's MCP session (`limits.session_key`), which the session cap counts;
        `model` labels the credits counted in the metrics; `detail` (an edit's model) is stored with the charge
        from the start, so it is known even when the call's outcome never is."""
        pay = _Payment(principal, kind, credits, model, session, detail)
        if dedupe is None:
            check_consent(self.confirm_above, credits, consent)
            return await self._pay(pay, send, record, None)
        key = guard_key(principal, kind, dedupe.key)
        async with self.guards.hold(key):
            existing = await dedupe.find()
            if existing is not None:
                return Paid(existing, 0)
            guard = Guard(key, f"{PROCESS_ID}#{next(self._calls)}")
            await self._claim(guard)
            try:
                existing = await dedupe.find()  # recorded by the previous holder just before it let go
                if existing is not None:
                    return Paid(existing, 0)
                check_consent(self.confirm_above, credits, consent)
                return await self._pay(pay, send, record, guard)
            finally:
                with anyio.CancelScope(shield=True):
                    try:
                        await self.ledger.release_guard(guard)
                    except StorageError:  # its lease ends it anyway
                        logger.warning("Could not release a dedupe guard", exc_info=True)

    async def _claim(self, guard: Guard) -> None:
        """Claim the shared guard, waiting (bounded by the lease) while another process holds it."""
        give_up = self.clock.now() + self.guard_lease + GUARD_POLL_MAX
        delay = GUARD_POLL_FIRST
        while True:
            try:
                claim = await self.ledger.claim_guard(guard, self.guard_lease, UNRECORDED_WINDOW)
            except StorageError as exc:
                raise LedgerUnavailableError(exc) from exc
            if claim.claimed:
                if claim.unrecorded is not None:
                    await self.ledger.release_guard(guard)
                    raise UnrecordedChargeError(claim.unrecorded, self.clock.now())
                return
            if claim.holder is not None and is_dead(claim.holder):
                # its process is gone: free the guard now instead of waiting out the lease (the next claim
                # then finds any charge it reserved and never recorded, and says so at once)
                logger.info("A dedupe guard's holder %s is no longer running; taking the guard over", claim.holder)
                await self.ledger.release_guard(Guard(guard.key, claim.holder))
                continue
            now = self.clock.now()
            if now >= give_up:
                raise GuardBusyError(
                    "Not sent: another server process has been submitting this identical request for over "
                    f"{self.guard_lease:.0f} s. Nothing was charged; call again in a minute to get its job."
                )
            await self.clock.sleep(min(delay, give_up - now))
            delay = min(delay * 2, GUARD_POLL_MAX)

    def limits(self, principal: str, session: str | None) -> CallLimits:
        """What a paid call of `principal` in `session` must fit now, besides the budget.

        Remembered until the caller's window ends: a paid call asks twice (planning and paying)."""
        now = self.clock.now()
        known = self._limits.get((principal, session))
        if known is not None and (known.rule is None or known.window_start <= now < known.renews_at):
            return known
        if len(self._limits) >= LIMITS_REMEMBERED:
            self._limits.clear()
        fresh = self._limits[principal, session] = call_limits(self.policy, principal, session, now)
        return fresh

    async def _pay(
        self,
        pay: _Payment,
        send: Callable[[], Awaitable[T]],
        record: Callable[[int, T], Awaitable[None]],
        guard: Guard | None,
    ) -> Paid[T]:
        with anyio.CancelScope(shield=True):
            try:
                limits = self.limits(pay.principal, pay.session)
                with span("cutout.ledger.reserve", **{"cutout.charge.kind": pay.kind}):
                    charge = await self.ledger.reserve(
                        pay.principal, pay.kind, pay.credits, self.budget, guard, limits, pay.detail
                    )
            except StorageError as exc:
                raise LedgerUnavailableError(exc) from exc
            released = False
            try:
                try:
                    value = await send()
                except CutoutError as exc:
                    if not exc.may_have_charged:
                        await self.ledger.release(charge)
                        released = True
                    raise
                try:
                    with span("cutout.ledger.record", **{"cutout.charge.kind": pay.kind}):
                        await record(charge, value)
                    logger.info("Paid %d credits for a %s call (ledger charge %d)", pay.credits, pay.kind, charge)
                except StorageError as exc:
                    logger.exception("A paid %s call succeeded but could not be written to the ledger", pay.kind)
                    problem = f"Recording this paid call failed, so the result is only in this answer: {exc}"
                    return Paid(value, pay.credits, problem)
            finally:
                if not released:  # the charge stays in the ledger: count it as the ledger does
                    self.metrics.credits_spent(TOOL_OF_KIND.get(pay.kind, pay.kind), pay.model, pay.credits)
        return Paid(value, pay.credits)


@dataclass(frozen=True)
class _Payment:
    """Who pays how much for what (one paid call)."""

    principal: str
    kind: ChargeKind
    credits: int
    model: str
    session: str | None = None
    detail: str | None = None


async def clean_guards(ledger: Storage, now: float) -> int:
    """Delete the guards whose lease is over or whose process is gone (`core.money.owners`); how many went."""
    gone = 0
    for guard, expires_at in await ledger.guards():
        if expires_at <= now or is_dead(guard.holder):
            await ledger.release_guard(guard)
            gone += 1
    if gone:
        logger.info("Removed %d dedupe guard(s) left by stopped server processes", gone)
    return gone


def guard_key(principal: str, kind: ChargeKind, key: Hashable) -> str:
    """The request's name in the shared guard table: the same in every process, and opaque."""
    return hashlib.sha256(repr((principal, kind, key)).encode()).hexdigest()
