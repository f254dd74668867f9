"""The allowance, the session cap and the rate, held by the storage contract on both backends.

Each limit is checked in the reserving transaction: a reservation past it is refused naming the limit,
released reservations count for nothing (the rate included), kept ones count, a window renews at its
end, and concurrent reservations through two handles never pass any limit.
"""

from __future__ import annotations

import sqlite3

import anyio
import pytest

from cutout_mcp.clock import ManualClock, iso_utc
from cutout_mcp.config.allowances import AllowancePolicy, Limits
from cutout_mcp.config.periods import parse_period
from cutout_mcp.config.settings import Settings
from cutout_mcp.core.storage import AllowanceExceededError, BudgetExceededError, Storage, schema
from cutout_mcp.core.storage.limits import CallLimits, call_limits
from cutout_mcp.core.storage.sqlite_db import FILE_NAME
from tests.test_storage import backend, opened, store, time

__all__ = ["backend", "store", "time"]  # the fixtures, shared with the storage contract

pytestmark = pytest.mark.anyio

HOUR = parse_period("1h")


def limits(
    clock: ManualClock,
    *,
    credits: int | None = None,
    session: str | None = None,
    session_credits: int | None = None,
    per_minute: int | None = None,
    principal: str = "alice",
    period: str = "1h",
) -> CallLimits:
    policy = AllowancePolicy(Limits(credits, parse_period(period), session_credits, per_minute))
    return call_limits(policy, principal, session, clock.now())


async def test_the_allowance_refuses_the_call_that_would_pass_it_and_names_it(
    store: Storage, time: ManualClock
) -> None:
    for _ in range(2):
        await store.reserve("alice", "edit", 4, None, limits=limits(time, credits=10))
    with pytest.raises(AllowanceExceededError) as refused:
        await store.reserve("alice", "edit", 4, None, limits=limits(time, credits=10))
    assert refused.value.limit == "allowance"
    message = str(refused.value)
    renews = limits(time, credits=10).renews_at
    for part in ("alice's allowance of 10 credits per 1h", "2 left", "8 used", "costs 4 credits", iso_utc(renews)):
        assert part in message
    assert "Nothing was sent to cutout.pro or charged." in message
    # another caller's allowance is their own
    await store.reserve("bob", "edit", 4, None, limits=limits(time, credits=10, principal="bob"))
    assert (await store.credits("alice", None)).spent == 8


async def test_a_window_renews_at_its_end_and_not_before(store: Storage, time: ManualClock) -> None:
    renews = limits(time, credits=5).renews_at
    await store.reserve("alice", "video", 5, None, limits=limits(time, credits=5))
    time.advance(renews - time.now() - 0.5)
    with pytest.raises(AllowanceExceededError):
        await store.reserve("alice", "video", 5, None, limits=limits(time, credits=5))
    time.advance(0.5)
    await store.reserve("alice", "video", 5, None, limits=limits(time, credits=5))


async def test_released_reservations_count_for_nothing_kept_ones_count(store: Storage, time: ManualClock) -> None:
    rule = limits(time, credits=10, per_minute=2)
    for _ in range(5):  # sent and provably not charged: released
        await store.release(await store.reserve("alice", "video", 5, None, limits=rule))
    kept = await store.reserve("alice", "video", 5, None, limits=rule)  # outcome unknown: stays
    await store.reserve("alice", "video", 5, None, limits=rule)
    with pytest.raises(AllowanceExceededError) as refused:
        await store.reserve("alice", "video", 5, None, limits=limits(time, credits=100, per_minute=2))
    assert refused.value.limit == "rate"
    assert kept > 0
    share = (await store.credits("alice", None, rule)).allowance
    assert share is not None
    assert (share.used, share.left) == (10, 0)


async def test_the_rate_counts_calls_started_in_the_last_sixty_seconds(store: Storage, time: ManualClock) -> None:
    await store.reserve("alice", "edit", 4, None, limits=limits(time, per_minute=2))
    time.advance(20)
    await store.reserve("alice", "edit", 4, None, limits=limits(time, per_minute=2))
    time.advance(10)
    with pytest.raises(AllowanceExceededError) as refused:
        await store.reserve("alice", "edit", 4, None, limits=limits(time, per_minute=2))
    assert refused.value.limit == "rate"
    assert "The next paid call is allowed in 30 s." in str(refused.value)
    await store.reserve("bob", "edit", 4, None, limits=limits(time, per_minute=2, principal="bob"))
    time.advance(30)
    await store.reserve("alice", "edit", 4, None, limits=limits(time, per_minute=2))


async def test_the_session_cap_holds_in_its_session_and_resets_in_a_new_one(store: Storage, time: ManualClock) -> None:
    first = limits(time, session="s1", session_credits=8)
    await store.reserve("alice", "edit", 4, None, limits=first)
    await store.reserve("alice", "edit", 4, None, limits=first)
    with pytest.raises(AllowanceExceededError) as refused:
        await store.reserve("alice", "edit", 4, None, limits=first)
    assert refused.value.limit == "session"
    assert "session cap of 8 credits has 0 left (8 used in this session)" in str(refused.value)
    await store.reserve("alice", "edit", 4, None, limits=limits(time, session="s2", session_credits=8))
    share = (await store.credits("alice", None, limits(time, session="s2", session_credits=8))).allowance
    assert share is not None
    assert (share.session_used, share.session_left) == (4, 4)


async def test_the_budget_is_checked_as_well(store: Storage, time: ManualClock) -> None:
    await store.reserve("alice", "video", 5, 8, limits=limits(time, credits=100))
    with pytest.raises(BudgetExceededError):
        await store.reserve("alice", "video", 5, 8, limits=limits(time, credits=100))
    share = (await store.credits("alice", 8, limits(time, credits=100))).allowance
    assert share is not None
    assert share.used == 5, "a reservation the budget refused counts for nothing"


async def test_a_share_shows_only_the_callers_own_numbers(store: Storage, time: ManualClock) -> None:
    await store.reserve("bob", "video", 5, None, limits=limits(time, credits=50, principal="bob"))
    await store.reserve("alice", "edit", 4, None, limits=limits(time, credits=50))
    summary = await store.credits("alice", None, limits(time, credits=50))
    assert summary.allowance is not None
    assert summary.allowance.model_dump() == {
        "name": "alice",
        "credits": 50,
        "period": "1h",
        "used": 4,
        "left": 46,
        "renews_at": iso_utc(limits(time, credits=50).renews_at),
        "session_credits": None,
        "session_used": None,
        "session_left": None,
        "paid_calls_per_minute": None,
    }


async def test_concurrent_reservations_never_pass_any_limit(backend: Settings, time: ManualClock) -> None:
    granted: dict[str, int] = {"alice": 0, "bob": 0}
    refused: dict[str, set[str]] = {"alice": set(), "bob": set()}
    async with opened(backend, time) as a, opened(backend, time) as b:

        async def spend(store: Storage, who: str, n: int) -> None:
            rule = limits(time, credits=23, session=f"{who}-{n % 2}", session_credits=15, per_minute=100, principal=who)
            try:
                await store.reserve(who, "video", 5, None, limits=rule)
                granted[who] += 5
            except AllowanceExceededError as exc:
                refused[who].add(exc.limit)

        async with anyio.create_task_group() as tg:
            for n in range(40):
                tg.start_soon(spend, a if n % 2 else b, "alice" if n % 4 < 2 else "bob", n)
    assert granted == {"alice": 20, "bob": 20}, "4 calls each fit 23; no session passes 15"
    assert refused["alice"]
    assert refused["alice"] <= {"allowance", "session"}


async def test_a_release_after_the_window_turned_over_gives_back_only_to_its_own_window(
    store: Storage, time: ManualClock
) -> None:
    old = await store.reserve("alice", "edit", 5, None, limits=limits(time, credits=10))
    time.advance(limits(time, credits=10).renews_at - time.now())  # the next hour begins
    await store.reserve("alice", "edit", 5, None, limits=limits(time, credits=10))
    await store.release(old)  # sent in the last window; cutout.pro provably did not charge it
    share = (await store.credits("alice", None, limits(time, credits=10))).allowance
    assert share is not None
    assert share.used == 5, "the new window keeps its own charge"
    await store.reserve("alice", "edit", 5, None, limits=limits(time, credits=10))
    with pytest.raises(AllowanceExceededError) as refused:
        await store.reserve("alice", "edit", 5, None, limits=limits(time, credits=10))
    assert "10 used" in str(refused.value)
    assert (await store.credits("alice", None)).spent == 10, "the released charge is gone from the budget too"


async def test_an_oauth_subject_using_two_clients_has_one_allowance_and_one_rate(
    store: Storage, time: ManualClock
) -> None:
    laptop = '["client-laptop","https://auth.example.com","bob@example.com"]'
    phone = '["client-phone","https://auth.example.com","bob@example.com"]'
    await store.reserve(laptop, "edit", 4, None, limits=limits(time, credits=10, per_minute=5, principal=laptop))
    await store.reserve(phone, "edit", 4, None, limits=limits(time, credits=10, per_minute=5, principal=phone))
    with pytest.raises(AllowanceExceededError) as refused:
        await store.reserve(phone, "edit", 4, None, limits=limits(time, credits=10, principal=phone))
    assert refused.value.limit == "allowance"
    assert "bob@example.com's allowance of 10 credits per 1h has 2 left (8 used" in str(refused.value)
    with pytest.raises(AllowanceExceededError) as too_fast:
        await store.reserve(laptop, "edit", 4, None, limits=limits(time, per_minute=2, principal=laptop))
    assert too_fast.value.limit == "rate", "both clients' calls count toward the one rate"
    share = (await store.credits(laptop, None, limits(time, credits=10, principal=laptop))).allowance
    assert share is not None
    assert (share.name, share.used) == ("bob@example.com", 8)


async def test_a_counter_made_on_first_use_holds_what_the_charges_in_its_window_add_up_to(
    store: Storage, time: ManualClock
) -> None:
    await store.reserve("alice", "video", 5, None)  # this window: not counted in the next one
    time.advance(limits(time, credits=20).renews_at - time.now() + 60)
    for _ in range(3):  # before any allowance was set: no counter moved
        await store.reserve("alice", "edit", 4, None)
    await store.reserve("bob", "edit", 4, None)  # someone else's
    share = (await store.credits("alice", None, limits(time, credits=20))).allowance
    assert share is not None
    assert share.used == 12, "read from the charges before the counter exists"
    await store.reserve("alice", "edit", 4, None, limits=limits(time, credits=20))  # made from the charges: 12 + 4
    await store.reserve("alice", "edit", 4, None, limits=limits(time, credits=20))
    with pytest.raises(AllowanceExceededError) as refused:
        await store.reserve("alice", "edit", 4, None, limits=limits(time, credits=20))
    assert "0 left (20 used this period)" in str(refused.value)
    await store.reserve("alice", "edit", 4, None)  # no allowance set for this call: the counter still counts it
    share = (await store.credits("alice", None, limits(time, credits=20))).allowance
    assert share is not None
    assert share.used == 24


async def test_a_session_counts_its_charges_made_before_its_cap_applied(store: Storage, time: ManualClock) -> None:
    uncapped = limits(time, session="s1", credits=100)
    await store.reserve("alice", "edit", 4, None, limits=uncapped)
    await store.release(await store.reserve("alice", "edit", 4, None, limits=uncapped))
    await store.reserve("alice", "edit", 4, None, limits=uncapped)
    await store.reserve("alice", "edit", 4, None, limits=limits(time, session="s2", credits=100))
    capped = limits(time, session="s1", session_credits=12)
    await store.reserve("alice", "edit", 4, None, limits=capped)
    with pytest.raises(AllowanceExceededError) as refused:
        await store.reserve("alice", "edit", 4, None, limits=capped)
    assert "(12 used in this session)" in str(refused.value)


def _ledger_of_version_5(settings: Settings, charges: list[tuple[str, int, float, str | None]]) -> None:
    """A ledger as a server of schema version 5 left it, holding `charges` (principal, credits, time, session)."""
    insert = "INSERT INTO charges (principal, kind, credits, created_at, session_id) VALUES (?, 'edit', ?, ?, ?)"
    setup = [schema.VERSION_TABLE, "INSERT INTO schema_version (version) VALUES (5)"]
    if settings.database_url is None:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(settings.state_dir / FILE_NAME) as db:
            for statement in [s for migration in schema.SQLITE[:5] for s in migration] + setup:
                db.execute(statement)
            db.executemany(insert, charges)
        return
    import psycopg

    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        for statement in [s for migration in schema.POSTGRES[:5] for s in migration] + setup:
            conn.execute(statement)
        conn.cursor().executemany(insert.replace("?", "%s"), charges)


async def test_an_upgraded_ledger_counts_the_charges_made_before_the_upgrade(
    backend: Settings, time: ManualClock
) -> None:
    laptop = '["client-laptop","https://auth.example.com","bob@example.com"]'
    phone = '["client-phone","https://auth.example.com","bob@example.com"]'
    now = time.now()
    _ledger_of_version_5(backend, [(laptop, 4, now - 1, "s1"), (phone, 4, now - 1, "s1"), ("alice", 4, now - 1, "s1")])
    async with opened(backend, time) as store:
        rule = limits(time, credits=10, session="s1", session_credits=100, principal=phone)
        with pytest.raises(AllowanceExceededError) as refused:
            await store.reserve(phone, "edit", 4, None, limits=rule)
        assert "bob@example.com's allowance of 10 credits per 1h has 2 left (8 used" in str(refused.value)
        capped = limits(time, credits=100, session="s1", session_credits=10, principal=laptop)
        with pytest.raises(AllowanceExceededError) as session_refused:
            await store.reserve(laptop, "edit", 4, None, limits=capped)
        assert "(8 used in this session)" in str(session_refused.value), "bob's charges in s1, not alice's"
        share = (
            await store.credits("alice", None, limits(time, credits=10, session="s1", session_credits=10))
        ).allowance
        assert share is not None
        assert (share.used, share.session_used) == (4, 4)
