"""Reading the ledger's charges for the usage report, on either backend, without writing a byte.

`cutout-mcp usage` runs beside live servers, so it opens the ledger read-only instead of through
`open_storage` (which migrates the schema and, for SQLite, switches the file to WAL): SQLite through a
`mode=ro` connection, which in WAL mode neither blocks the servers' writes nor waits for them;
PostgreSQL through one plain connection whose transaction is read-only, outside the servers' pool.
Nothing is migrated: the report reads only the columns every schema version has (`charges`: principal,
kind, ref_id, detail, credits, created_at), so a ledger written by an older or newer server reads the same.

A charge row exists from the moment a paid call is reserved until cutout.pro provably did not charge
it (then it is deleted, `Storage.release`). Its `ref_id` is set once the job or edit it bought is
recorded; a row still without one is a call whose outcome is unknown (a timeout, a 5xx, a lost answer,
a server stopped mid-call) or one in flight right now: cutout.pro may have charged it, and the budget
counts it as spent. The sums are made in SQL, per caller key, tool, model and UTC day.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cutout_mcp.config import Settings
from cutout_mcp.core.storage.base import StorageError
from cutout_mcp.core.storage.postgres_url import describe, redact
from cutout_mcp.core.storage.sqlite_db import BUSY_TIMEOUT_MS, FILE_NAME

DAY_SECONDS = 86_400
CONNECT_SECONDS = 5

_SUMS = (
    "COUNT(*) AS calls, SUM(credits) AS credits, SUM(CASE WHEN ref_id IS NULL THEN 1 ELSE 0 END) AS unknown_calls, "
    "SUM(CASE WHEN ref_id IS NULL THEN credits ELSE 0 END) AS unknown_credits FROM charges "
)
SQLITE_USAGE = (
    f"SELECT principal, kind, detail, CAST(created_at / {DAY_SECONDS} AS INTEGER) AS day, {_SUMS}"
    "WHERE created_at >= ? AND created_at < ? GROUP BY principal, kind, detail, day"
)
POSTGRES_USAGE = (
    f"SELECT principal, kind, detail, CAST(FLOOR(created_at / {DAY_SECONDS}) AS BIGINT) AS day, {_SUMS}"
    "WHERE created_at >= %s AND created_at < %s GROUP BY principal, kind, detail, day"
)
"""One row per caller key, kind, detail and UTC day (days since the epoch) within [since, until)."""


@dataclass(frozen=True)
class UsageRow:
    """What one caller spent on one kind of call, one model and one UTC day."""

    principal: str
    """The caller's key as stored (`config.allowances.principal_name` names it)."""
    kind: str
    """`video` or `edit`."""
    detail: str | None
    """The edit's model (stored with the reservation); None for videos, and for edits whose outcome is
    unknown that were reserved before the ledger's schema version 6."""
    day: int
    """Days since 1970-01-01, UTC."""
    calls: int
    credits: int
    unknown_calls: int
    """Of `calls`, those whose outcome is unknown (or still in flight): cutout.pro may have charged them."""
    unknown_credits: int


@dataclass(frozen=True)
class Ledger:
    """The ledger a report reads, named for messages (a PostgreSQL address never carries its password)."""

    where: str
    rows: list[UsageRow]


def read_usage(settings: Settings, since: float, until: float) -> Ledger:
    """The charges reserved in [since, until) in the ledger `settings` name, summed; read-only."""
    if settings.database_url is not None:
        return _read_postgres(settings.database_url.get_secret_value(), since, until)
    return _read_sqlite(settings.state_dir / FILE_NAME, since, until)


def _row(row: Any) -> UsageRow:
    return UsageRow(
        principal=str(row["principal"]),
        kind=str(row["kind"]),
        detail=None if row["detail"] is None else str(row["detail"]),
        day=int(row["day"]),
        calls=int(row["calls"]),
        credits=int(row["credits"]),
        unknown_calls=int(row["unknown_calls"]),
        unknown_credits=int(row["unknown_credits"]),
    )


def _read_sqlite(path: Path, since: float, until: float) -> Ledger:
    where = str(path)
    if not path.is_file():
        raise StorageError(
            f"No job ledger at {where}: no cutout-mcp server has kept one in this CUTOUT_STATE_DIR. Set "
            "CUTOUT_STATE_DIR to the servers' state folder (or CUTOUT_DATABASE_URL to their database)."
        )
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise StorageError(f"The job ledger {where} cannot be opened for reading ({exc}).") from exc
    try:
        db.row_factory = sqlite3.Row
        rows = db.execute(SQLITE_USAGE, (since, until)).fetchall()
    except sqlite3.Error as exc:
        if "no such table" in str(exc):
            raise StorageError(f"{where} is not a cutout-mcp job ledger (it has no charges).") from exc
        raise StorageError(f"The job ledger {where} cannot be read ({exc}).") from exc
    finally:
        db.close()
    return Ledger(where, [_row(row) for row in rows])


def _read_postgres(url: str, since: float, until: float) -> Ledger:
    import psycopg
    from psycopg.rows import dict_row

    where = describe(url)
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_SECONDS, row_factory=dict_row) as conn:
            conn.read_only = True
            rows = conn.execute(POSTGRES_USAGE, (since, until)).fetchall()
    # `from None`: a driver error may quote the URL, password included, and a traceback would show it
    except psycopg.errors.UndefinedTable:
        raise StorageError(f"The database at {where} holds no cutout-mcp ledger (it has no charges).") from None
    except psycopg.Error as exc:
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StorageError(
            f"The PostgreSQL database at {where} cannot be read ({redact(line, url)}). Check CUTOUT_DATABASE_URL "
            "and that the database is reachable."
        ) from None
    return Ledger(where, [_row(row) for row in rows])
