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

from cutout_mcp.core.storage import schema

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
