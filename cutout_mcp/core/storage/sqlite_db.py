"""Opening the SQLite ledger file: connections, WAL, the busy wait, write transactions, migration.

Durability (WAL, `synchronous=NORMAL`): a commit reaches the WAL file (the OS page cache) before the
call returns, so a committed row survives the server being killed (`kill -9`) and another process
reads it at once; only an OS crash or power cut can lose the last few commits, never corrupt the
file. Writes that read first use `BEGIN IMMEDIATE` (`immediate`), so two processes cannot both check
the budget, or both find a guard free, and then both act.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cutout_mcp.core.storage import schema
from cutout_mcp.core.storage.base import StorageError

logger = logging.getLogger(__name__)

FILE_NAME = "ledger.sqlite3"
BUSY_TIMEOUT_MS = 10_000
MEMORY = ":memory:"
SQLITE_BUSY, SQLITE_LOCKED = 5, 6

Db = sqlite3.Connection


def connect(path: str, *, busy_ms: int) -> Db:
    db = sqlite3.connect(path, timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute(f"PRAGMA busy_timeout = {busy_ms}")
    if path != MEMORY:
        use_wal(db, busy_ms)
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def use_wal(db: Db, busy_ms: int) -> None:
    """Switch the file to WAL, waiting up to `busy_ms` for other processes doing the same.

    When several processes open a new ledger at once, SQLite can answer the switch with "database is
    locked" at once instead of calling the busy handler (about one start in fifteen with four at
    once), so the wait is made here. Runs at start-up, in a worker thread.
    """
    deadline = time.monotonic() + busy_ms / 1000
    delay = 0.002
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(2 * delay, 0.1)


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock (SQLITE_BUSY / SQLITE_LOCKED)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return int(code) & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


@contextmanager
def immediate(db: Db) -> Iterator[Db]:
    """A write transaction that takes the file's write lock first (so what it reads stays true)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def migrate(db: Db) -> None:
    # The first process to take the write lock migrates; the others wait for it (up to the busy
    # timeout) and then find the schema current.
    with immediate(db):
        db.execute(schema.VERSION_TABLE)
        row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = int(row[0] or 0)
        steps = schema.pending(current, schema.SQLITE)
        for number, statements in steps:
            for statement in statements:
                db.execute(statement)
            logger.info("Ledger schema upgraded to version %s", number)
        if steps:
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (schema.VERSION,))


class LedgerUnusableError(StorageError):
    """The ledger file cannot be trusted (not a database, damaged, foreign, or from a newer version).

    The server refuses to start rather than run paid calls unrecorded; the file is left as it was.
    """

    def __init__(self, path: str, what: str, advice: str | None = None) -> None:
        name = Path(path).name
        advice = advice or (
            f"To start with a new, empty ledger, move it aside together with any {name}-wal and {name}-shm "
            f"beside it (for example: mv {name} {name}.damaged); the jobs and spend it recorded stay in that "
            "copy. Or set CUTOUT_STATE_DIR to another folder."
        )
        super().__init__(
            f"The job ledger {path} (in CUTOUT_STATE_DIR) cannot be used: {what}. It was not changed. {advice} "
            "Without a ledger the server cannot promise that no call is charged twice, so it did not start."
        )
        self.path = path


KNOWN_TABLES = frozenset({"video_jobs", "charges", "spend", "guards", "tasks", "secrets", "schema_version"})


def check_file(path: str) -> None:
    """Refuse a ledger file that is not a sound cutout-mcp ledger this version can use, reading only.

    Opened read-only, so nothing is written to a file that fails: not the WAL switch, not a migration.
    A missing or empty file is a new ledger and passes.
    """
    if not Path(path).is_file() or Path(path).stat().st_size == 0:
        return
    try:
        db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise LedgerUnusableError(path, f"it cannot be opened ({exc})") from exc
    try:
        _check_open_file(db, path)
    finally:
        db.close()


def _check_open_file(db: Db, path: str) -> None:
    try:
        problems = [str(row[0]) for row in db.execute("PRAGMA quick_check(5)").fetchall()]
        tables = {str(row[0]) for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = None
        if "schema_version" in tables:
            version = db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
    except sqlite3.OperationalError as exc:
        if is_busy(exc):
            raise
        raise LedgerUnusableError(path, f"SQLite cannot read it ({exc})") from exc
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        raise LedgerUnusableError(path, _plain(exc)) from exc
    if problems != ["ok"]:
        first = [line for line in "\n".join(problems).splitlines() if line and not line.startswith("***")]
        raise LedgerUnusableError(path, f"it is damaged (SQLite's integrity check: {(first or problems)[0]})")
    if tables and "video_jobs" not in tables and not tables <= KNOWN_TABLES:
        raise LedgerUnusableError(path, "it is an SQLite database, but not a cutout-mcp ledger")
    if version is not None and int(version) > schema.VERSION:
        raise LedgerUnusableError(
            path,
            f"it was written by a newer cutout-mcp (schema version {version}; this one knows up to {schema.VERSION})",
            advice="Upgrade cutout-mcp to the version that wrote it, or set CUTOUT_STATE_DIR to another folder.",
        )


def _plain(exc: sqlite3.DatabaseError) -> str:
    text = str(exc)
    if "not a database" in text:
        return "it is not an SQLite database"
    if "malformed" in text:
        return "it is damaged (SQLite: database disk image is malformed)"
    return f"SQLite cannot read it ({text})"
