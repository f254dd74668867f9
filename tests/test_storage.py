"""The storage contract, held against both backends: SQLite (the default) and a real PostgreSQL.

Every promise several server processes rely on is here once and runs twice: rows are durable and
shared, the budget is one checked counter, a dedupe guard is held by one caller at a time and taken
over only after its lease, and task records carry leases that another process can adopt.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from cutout_mcp.cli import main
from cutout_mcp.clock import ManualClock
from cutout_mcp.config import ConfigError, Settings
from cutout_mcp.core.results import VideoJob
from cutout_mcp.core.storage import (
    FILE_NAME,
    BudgetExceededError,
    Guard,
    GuardLostError,
    SqliteStorage,
    Storage,
    StorageError,
    TaskRow,
    open_storage,
    schema,
)

pytestmark = pytest.mark.anyio

IMAGE = "https://img.example.com/cat.jpg"
BACKENDS = ["sqlite", "postgresql"]

Opener = Callable[[ManualClock], "AsyncIterator[Storage]"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings naming a fresh store of each backend (the PostgreSQL one in its own database)."""
    if request.param == "sqlite":
        return Settings(state_dir=tmp_path / "state")
    return Settings(state_dir=tmp_path / "unused", database_url=request.getfixturevalue("database_url"))


@pytest.fixture
def time() -> ManualClock:
    return ManualClock()


@asynccontextmanager
async def opened(settings: Settings, clock: ManualClock) -> AsyncIterator[Storage]:
    async with open_storage(settings, clock) as storage:
        yield storage


@pytest.fixture
async def store(backend: Settings, time: ManualClock) -> AsyncIterator[Storage]:
    async with opened(backend, time) as storage:
        yield storage


def processing(job_id: int, percentage: float) -> VideoJob:
    return VideoJob(
        id=job_id, status="processing", percentage=percentage, wait_number=0, credits_charged=0, message="m"
    )


# --- the ledger ------------------------------------------------------------------------


async def test_rows_survive_reopening(backend: Settings, time: ManualClock) -> None:
    async with opened(backend, time) as first:
        charge = await first.reserve("local", "video", 5, None)
        await first.record_video_job(charge, 42, "local", IMAGE, "blink", 5)
        await first.update_job(processing(42, 40))
    async with opened(backend, time) as again:
        (job,) = await again.list_jobs("local")
        assert (job.id, job.status, job.percentage, job.prompt) == (42, "processing", 40, "blink")
        assert (await again.credits("local", None)).spent == 5


async def test_two_processes_see_each_other_and_share_the_budget(backend: Settings, time: ManualClock) -> None:
    async with opened(backend, time) as a, opened(backend, time) as b:
        await a.record_video_job(await a.reserve("local", "video", 5, 12), 1, "local", IMAGE, None, 5)
        assert await b.find_active("local", IMAGE, None) is not None, "another process sees the job at once"
        await b.reserve("local", "edit", 4, 12)
        with pytest.raises(BudgetExceededError) as refused:
            await a.reserve("local", "edit", 4, 12)
        assert (refused.value.spent, refused.value.remaining) == (9, 3)
        assert "3 credits remaining" in str(refused.value)
        assert "9 spent" in str(refused.value)


async def test_a_released_charge_gives_its_credits_back_to_the_budget(store: Storage) -> None:
    charge = await store.reserve("alice", "edit", 4, 8)
    await store.reserve("bob", "edit", 4, 8)
    with pytest.raises(BudgetExceededError):
        await store.reserve("alice", "edit", 4, 8)
    await store.release(charge)
    await store.reserve("alice", "edit", 4, 8)
    assert (await store.credits("alice", 8)).model_dump() == {
        "spent": 4,
        "spent_total": 8,
        "budget": 8,
        "remaining": 0,
        "allowance": None,
    }


async def test_concurrent_reservations_never_pass_the_budget(backend: Settings, time: ManualClock) -> None:
    granted: list[int] = []
    refused: list[int] = []
    async with opened(backend, time) as a, opened(backend, time) as b:

        async def spend(store: Storage) -> None:
            try:
                granted.append(await store.reserve("local", "video", 5, 52))
            except BudgetExceededError:
                refused.append(1)

        async with anyio.create_task_group() as tg:
            for n in range(40):
                tg.start_soon(spend, a if n % 2 else b)
        assert len(granted) == 10
        assert len(refused) == 30
        assert (await a.credits("local", 52)).spent_total == 50


async def test_listing_is_newest_first_filtered_bounded_and_per_principal(store: Storage, time: ManualClock) -> None:
    for job_id in range(1, 6):
        await store.record_video_job(None, job_id, "alice", f"{IMAGE}?{job_id}", None, 5)
        time.advance(1)
    await store.record_video_job(None, 99, "bob", IMAGE, None, 5)
    await store.update_job(processing(2, 10))
    assert [j.id for j in await store.list_jobs("alice", limit=3)] == [5, 4, 3]
    assert [j.id for j in await store.list_jobs("alice", "processing")] == [2]
    assert [j.id for j in await store.list_jobs("bob")] == [99]
    assert await store.get_job("bob", 2) is None
    assert await store.owner(2) == "alice"
    assert await store.owner(12345) is None
    assert (await store.find_active("alice", f"{IMAGE}?2", None)) is not None
    assert await store.find_active("alice", f"{IMAGE}?2", "a prompt") is None, "another prompt is another request"


async def test_a_staged_image_is_found_by_content_shown_by_source_and_released_once_no_job_runs(
    store: Storage,
) -> None:
    content, key = "content:abc", "staged/abc.jpg"
    for job_id, path in ((1, "/home/me/cat.jpg"), (2, "/home/me/same cat.jpg")):
        await store.record_video_job(None, job_id, "me", path, f"p{job_id}", 5, image_ref=content, staged_key=key)
    found = await store.find_active("me", content, "p2")
    assert found is not None
    assert (found.id, found.image_url) == (2, "/home/me/same cat.jpg")
    assert await store.find_active("me", "/home/me/same cat.jpg", "p2") is None, "the label is not the identity"
    assert await store.staged_key_of(1) == key
    assert await store.staged_key_in_use(key)
    assert await store.finished_staged_keys() == []
    await store.update_job(processing(1, 100).model_copy(update={"status": "succeeded"}))
    assert await store.staged_key_in_use(key), "job 2 still runs"
    assert await store.finished_staged_keys() == [key]
    await store.forget_staged(key)
    assert await store.staged_key_of(1) is None
    assert await store.staged_key_of(2) == key, "an unfinished job keeps its key"
    await store.update_job(processing(2, 100).model_copy(update={"status": "failed"}))
    assert not await store.staged_key_in_use(key)
    assert await store.finished_staged_keys() == [key]


async def test_a_guard_prefix_is_held_while_any_guard_under_it_is_within_its_lease(
    store: Storage, time: ManualClock
) -> None:
    assert not await store.guard_held("staged-use:k1:")
    mine = Guard("staged-use:k1:a", "me")
    assert (await store.claim_guard(mine, 30, 0)).claimed
    assert (await store.claim_guard(Guard("staged-use:k10:b", "me"), 30, 0)).claimed
    assert await store.guard_held("staged-use:k1:")
    assert not await store.guard_held("staged-use:k2:")
    await store.release_guard(mine)
    assert not await store.guard_held("staged-use:k1:"), "k10 is another key"
    await store.claim_guard(mine, 30, 0)
    time.advance(31)
    assert not await store.guard_held("staged-use:k1:"), "a dead holder's mark expires with its lease"


async def test_a_job_id_of_64_bits_is_kept_exactly(store: Storage) -> None:
    job_id = 2**63 - 1
    await store.record_video_job(None, job_id, "local", IMAGE, None, 5)
    assert (await store.get_job("local", job_id)) is not None


# --- the dedupe guard --------------------------------------------------------------------


async def test_a_guard_is_held_by_one_caller_until_released(store: Storage, time: ManualClock) -> None:
    first, second = Guard("k", "one"), Guard("k", "two")
    assert (await store.claim_guard(first, 60, 900)).claimed
    held = await store.claim_guard(second, 60, 900)
    assert not held.claimed
    assert held.held_until == time.now() + 60
    await store.release_guard(second)  # not its own: changes nothing
    assert not (await store.claim_guard(second, 60, 900)).claimed
    await store.release_guard(first)
    assert (await store.claim_guard(second, 60, 900)).claimed
    assert (await store.claim_guard(Guard("other", "three"), 60, 900)).claimed, "guards are per request"


async def test_a_dead_holders_guard_is_taken_over_after_its_lease(store: Storage, time: ManualClock) -> None:
    assert (await store.claim_guard(Guard("k", "dead"), 60, 900)).claimed
    time.advance(59)
    assert not (await store.claim_guard(Guard("k", "next"), 60, 900)).claimed
    time.advance(1)
    taken = await store.claim_guard(Guard("k", "next"), 60, 900)
    assert taken.claimed
    assert taken.unrecorded is None, "the dead holder paid for nothing"


async def test_a_charge_reserved_under_a_guard_and_never_recorded_is_reported(
    store: Storage, time: ManualClock
) -> None:
    dead = Guard("k", "dead")
    await store.claim_guard(dead, 60, 900)
    charge = await store.reserve("local", "video", 5, None, dead)
    time.advance(120)  # the holder died after reserving: its request may have reached cutout.pro
    taken = await store.claim_guard(Guard("k", "next"), 60, 900)
    assert taken.claimed
    assert taken.unrecorded is not None
    assert taken.unrecorded.charge == charge
    await store.release_guard(Guard("k", "next"))

    time.advance(900)  # long after: an identical job would have finished anyway
    assert (await store.claim_guard(Guard("k", "later"), 60, 900)).unrecorded is None


async def test_a_recorded_or_released_charge_is_not_reported(store: Storage, time: ManualClock) -> None:
    holder = Guard("k", "h1")
    await store.claim_guard(holder, 60, 900)
    recorded = await store.reserve("local", "video", 5, None, holder)
    await store.record_video_job(recorded, 7, "local", IMAGE, None, 5)
    released = await store.reserve("local", "video", 5, None, holder)
    await store.release(released)
    await store.release_guard(holder)
    assert (await store.claim_guard(Guard("k", "h2"), 60, 900)).unrecorded is None


async def test_a_holder_whose_guard_was_taken_over_cannot_reserve(store: Storage, time: ManualClock) -> None:
    slow = Guard("k", "slow")
    await store.claim_guard(slow, 60, 900)
    time.advance(61)
    await store.claim_guard(Guard("k", "fast"), 60, 900)
    with pytest.raises(GuardLostError):
        await store.reserve("local", "video", 5, 100, slow)
    assert (await store.credits("local", 100)).spent_total == 0, "nothing was counted"


# --- tasks ----------------------------------------------------------------------------------


def task(time: ManualClock, task_id: str = "task_a", holder: str = "p1", lease: float = 30) -> TaskRow:
    now = time.now()
    return TaskRow(
        task_id=task_id,
        owner="alice",
        tool="generate_video",
        status="working",
        created_at=now,
        updated_at=now,
        expires_at=now + 3600,
        status_message="starting",
        lease_holder=holder,
        lease_expires=now + lease,
    )


async def test_a_task_is_read_back_as_written_and_saved_only_by_its_holder(store: Storage, time: ManualClock) -> None:
    row = task(time)
    await store.create_task(row)
    assert await store.get_task("task_a") == row
    assert await store.get_task("task_b") is None
    progressed = row.with_(status_message="Video job 7 is queued", job_id=7, credits=5, resume_hint="hint")
    assert await store.save_task(progressed)
    assert await store.get_task("task_a") == progressed
    assert not await store.save_task(progressed.with_(lease_holder="p2", status_message="not mine"))


async def test_a_task_finishes_once_and_a_cancel_from_anywhere_wins(store: Storage, time: ManualClock) -> None:
    row = task(time)
    await store.create_task(row)
    cancelled = row.with_(status="cancelled", status_message="Cancelled")
    assert await store.finish_task(cancelled, holder=None)  # tasks/cancel, answered by any process
    assert not await store.save_task(row.with_(status_message="still polling"))
    completed = row.with_(status="completed", result={"content": []})
    assert not await store.finish_task(completed, holder="p1"), "the cancel stays"
    stored = await store.get_task("task_a")
    assert stored is not None
    assert (stored.status, stored.status_message, stored.result) == ("cancelled", "Cancelled", None)

    other = task(time, "task_b")
    await store.create_task(other)
    done = other.with_(status="completed", result={"structuredContent": {"id": 7}}, status_message="done")
    assert not await store.finish_task(done, holder="p2"), "only the lease holder finishes a task"
    assert await store.finish_task(done, holder="p1")
    stored = await store.get_task("task_b")
    assert stored is not None
    assert stored.result == {"structuredContent": {"id": 7}}


async def test_an_expired_lease_is_adopted_by_exactly_one_process(backend: Settings, time: ManualClock) -> None:
    async with opened(backend, time) as a, opened(backend, time) as b:
        await a.create_task(task(time, "task_live", holder="p1"))
        await a.create_task(task(time, "task_dead", holder="p0"))
        time.advance(20)
        assert await a.renew_task_leases("p1", ["task_live", "task_dead"], time.now() + 30) == {"task_live"}
        time.advance(5)
        assert await a.adopt_tasks("p2", time.now(), time.now() + 30) == [], "every lease is still running"
        time.advance(10)  # p0's lease (30 s from the start) ran out; p1 renewed its own
        results: list[list[TaskRow]] = []

        async def adopt(store: Storage, holder: str) -> None:
            results.append(await store.adopt_tasks(holder, time.now(), time.now() + 30))

        async with anyio.create_task_group() as tg:
            tg.start_soon(adopt, a, "p2")
            tg.start_soon(adopt, b, "p3")
        adopted = [row for rows in results for row in rows]
        assert [row.task_id for row in adopted] == ["task_dead"]
        assert adopted[0].lease_holder in ("p2", "p3")
        stored = await b.get_task("task_dead")
        assert stored is not None
        assert stored.lease_holder == adopted[0].lease_holder


async def test_expired_tasks_are_deleted_and_never_adopted(store: Storage, time: ManualClock) -> None:
    await store.create_task(task(time))
    time.advance(3600)
    assert await store.adopt_tasks("p2", time.now(), time.now() + 30) == []
    assert await store.delete_expired_tasks(time.now()) == 1
    assert await store.get_task("task_a") is None


# --- secrets ------------------------------------------------------------------------------


async def test_a_shared_secret_is_the_first_one_stored_for_every_process_and_after_reopening(
    backend: Settings, time: ManualClock
) -> None:
    candidates = [bytes([n]) * 32 for n in range(1, 5)]
    got: list[bytes] = []

    async def start(candidate: bytes) -> None:
        async with opened(backend, time) as storage:
            got.append(await storage.shared_secret("request-state-key", candidate))

    async with anyio.create_task_group() as tg:  # replicas starting together, each with its own key
        for candidate in candidates:
            tg.start_soon(start, candidate)
    assert len(got) == 4
    assert len(set(got)) == 1
    assert got[0] in candidates
    async with opened(backend, time) as again:
        assert await again.shared_secret("request-state-key", b"x" * 32) == got[0]
        assert await again.shared_secret("another", b"y" * 32) == b"y" * 32


# --- the schema ------------------------------------------------------------------------------


async def test_replicas_starting_together_create_the_schema_once(backend: Settings, time: ManualClock) -> None:
    versions: list[int] = []

    async def start() -> None:
        async with opened(backend, time) as storage:
            await storage.credits("local", None)
            versions.append(schema.VERSION)

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(start)
    assert len(versions) == 4
    async with opened(backend, time) as storage:
        assert (await storage.credits("local", None)).spent_total == 0


def test_servers_opening_a_new_ledger_together_all_open_it(tmp_path: Path) -> None:
    """Four servers starting at once on an empty folder (each its own connection, as separate processes
    have): SQLite can refuse the switch to WAL at once ("database is locked") instead of waiting; every
    one must still open the ledger rather than fail to start."""
    failures: list[str] = []

    def open_and_close(folder: Path) -> None:
        try:
            SqliteStorage.open_in(folder).close()
        except sqlite3.OperationalError as exc:
            failures.append(str(exc))

    for attempt in range(40):  # one round in about fifteen hit the refusal before the fix
        folder = tmp_path / str(attempt)
        threads = [threading.Thread(target=open_and_close, args=(folder,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []


async def test_a_ledger_from_before_versioning_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    with sqlite3.connect(path) as db:
        for statement in schema.SQLITE[0]:
            db.execute(statement)
        db.execute(
            "INSERT INTO charges (principal, kind, credits, created_at) VALUES ('local', 'video', 5, 1), "
            "('local', 'edit', 4, 2)"
        )
    storage = SqliteStorage(path)
    try:
        assert (await storage.credits("local", 10)).model_dump() == {
            "spent": 9,
            "spent_total": 9,
            "budget": 10,
            "remaining": 1,
            "allowance": None,
        }
    finally:
        storage.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(schema.VERSION,)]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_an_unfinished_job_from_before_image_sources_is_still_found_after_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    with sqlite3.connect(path) as db:
        for migration in schema.SQLITE[:3]:
            for statement in migration:
                db.execute(statement)
        db.execute(schema.VERSION_TABLE)
        db.execute("INSERT INTO schema_version (version) VALUES (3)")
        db.execute(
            "INSERT INTO video_jobs (id, principal, image_url, prompt, status, credits, created_at, updated_at) "
            f"VALUES (7, 'local', '{IMAGE}', NULL, 'queued', 5, 1, 1)"
        )
    storage = SqliteStorage(path)
    try:
        found = await storage.find_active("local", IMAGE, None)
        assert found is not None, "identical requests made before the upgrade are still the same job"
        assert found.image_url == IMAGE
        assert await storage.staged_key_of(7) is None
    finally:
        storage.close()


async def test_a_database_from_a_newer_version_is_refused(backend: Settings, time: ManualClock) -> None:
    async with opened(backend, time) as storage:
        await storage.credits("local", None)
    if backend.database_url is None:
        with sqlite3.connect(backend.state_dir / FILE_NAME) as db:
            db.execute("UPDATE schema_version SET version = 99")
    else:
        import psycopg

        with psycopg.connect(backend.database_url.get_secret_value(), autocommit=True) as conn:
            conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StorageError, match="newer"):
        async with opened(backend, time):
            pass


# --- backend specifics -----------------------------------------------------------------------


async def test_an_unreachable_database_is_a_clear_error_without_its_password(tmp_path: Path) -> None:
    pytest.importorskip("psycopg_pool", reason="psycopg-pool missing: pip install -e '.[test]'")
    url = "postgresql://cutout:s3cret-Passw0rd@127.0.0.1:1/jobs?connect_timeout=2"
    settings = Settings(state_dir=tmp_path, database_url=url)
    with pytest.raises(StorageError) as caught:
        async with open_storage(settings):
            pass
    message = str(caught.value)
    assert "database jobs on host 127.0.0.1, port 1" in message
    assert "CUTOUT_DATABASE_URL" in message
    assert "s3cret-Passw0rd" not in message
    assert "s3cret-Passw0rd" not in repr(settings)


async def test_a_write_waiting_on_another_process_never_blocks_the_event_loop(tmp_path: Path) -> None:
    storage = SqliteStorage.open_in(tmp_path)
    blocker = sqlite3.connect(tmp_path / FILE_NAME, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        done = anyio.Event()

        async def reserve() -> None:
            await storage.reserve("local", "video", 5, None)
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(reserve)
            await anyio.wait_all_tasks_blocked()
            assert not done.is_set(), "the write waits for the lock ..."
            blocker.execute("COMMIT")  # ... while this coroutine, on the same event loop, still runs
            await done.wait()
        assert (await storage.credits("local", None)).spent == 5
    finally:
        blocker.close()
        storage.close()


# --- choosing the backend ----------------------------------------------------------------------


def test_the_database_url_is_a_secret_and_must_be_postgresql() -> None:
    url = "postgresql://cutout:s3cret-Passw0rd@db.internal:5432/jobs"
    settings = Settings.load({"CUTOUT_DATABASE_URL": url})
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == url
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in settings.model_dump_json()
    assert Settings.load({"CUTOUT_DATABASE_URL": "  "}).database_url is None, "blank means the SQLite default"
    with pytest.raises(ConfigError) as refused:
        Settings.load({"CUTOUT_DATABASE_URL": "mysql://root:hunter2@db/jobs"})
    assert "CUTOUT_DATABASE_URL" in str(refused.value)
    assert "postgresql://" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_a_missing_driver_stops_the_cli_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name.startswith("psycopg") else real_find_spec(name, *a)
    )
    monkeypatch.setenv("CUTOUT_DATABASE_URL", "postgresql://cutout:s3cret-Passw0rd@db.internal/jobs")
    assert main([]) == 2
    error = capsys.readouterr().err
    assert "pip install 'cutout-mcp[postgres]'" in error
    assert "s3cret" not in error


def test_the_database_password_is_scrubbed_from_every_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from cutout_mcp.logs import configure_logging

    url = "postgresql://cutout:s3cret-Passw0rd@db.internal/jobs?password=other-S3cret"
    configure_logging(Settings(database_url=url, log_level="INFO"))
    logging.getLogger("psycopg.pool").warning("error connecting in 'pool-1': %s", url)
    logging.getLogger("psycopg.pool").warning("password=other-S3cret rejected")
    logged = capsys.readouterr().err
    assert "error connecting" in logged
    assert "s3cret-Passw0rd" not in logged
    assert "other-S3cret" not in logged


def test_sandbox_mode_never_writes_to_a_shared_database() -> None:
    from types import SimpleNamespace

    from cutout_mcp.sandbox_mode import sandbox_settings

    shared = Settings(database_url="postgresql://cutout@db.internal/jobs", credit_budget=100)
    sandbox = SimpleNamespace(api_key="sandbox-key", base_url="http://127.0.0.1:8787")
    sandboxed = sandbox_settings(shared, sandbox)  # type: ignore[arg-type]
    assert sandboxed.database_url is None, "sandbox jobs go to a throwaway SQLite ledger"
    assert sandboxed.credit_budget is None
