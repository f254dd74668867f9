"""Shared state: the ledger, the dedupe guards and the task records, in SQLite or PostgreSQL.

`open_storage(settings)` picks the backend: PostgreSQL when `CUTOUT_DATABASE_URL` is set (several
replicas on any machines act as one server), otherwise the SQLite file in `CUTOUT_STATE_DIR` (the
zero-setup default, shared by the server processes of one machine). The interface and what both
backends promise are in `base`.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from cutout_mcp.clock import Clock
from cutout_mcp.config import ConfigError, Settings
from cutout_mcp.core.storage.base import (
    BudgetExceededError,
    ChargeKind,
    Claim,
    Guard,
    GuardLostError,
    Storage,
    StorageError,
    TaskRow,
    TaskStatus,
    Unrecorded,
)
from cutout_mcp.core.storage.limits import AllowanceExceededError, CallLimits
from cutout_mcp.core.storage.sqlite import BUSY_TIMEOUT_MS, FILE_NAME, LedgerUnusableError, SqliteStorage, is_busy

__all__ = [
    "FILE_NAME",
    "AllowanceExceededError",
    "BudgetExceededError",
    "CallLimits",
    "ChargeKind",
    "Claim",
    "Guard",
    "GuardLostError",
    "LedgerUnusableError",
    "SqliteStorage",
    "Storage",
    "StorageError",
    "TaskRow",
    "TaskStatus",
    "Unrecorded",
    "check_driver",
    "open_storage",
]

POSTGRES_EXTRA = "pip install 'cutout-mcp[postgres]' (in a checkout: pip install '.[postgres]')"


def check_driver(settings: Settings) -> None:
    """Refuse at start-up, naming the extra, when a PostgreSQL URL is set but psycopg is missing."""
    if settings.database_url is None:
        return
    missing = [name for name in ("psycopg", "psycopg_pool") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"CUTOUT_DATABASE_URL names a PostgreSQL database, but {' and '.join(missing)} is not installed. "
            f"Install the PostgreSQL extra: {POSTGRES_EXTRA}"
        )


@asynccontextmanager
async def open_storage(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Storage]:
    """The storage `settings` name, closed on exit.

    PostgreSQL must be reachable: several replicas must never fall back to private state. Neither does
    the SQLite default: a ledger that cannot be opened, read or trusted stops the server with a message
    naming the file (`LedgerUnusableError`), because paid calls without it would go unrecorded.
    """
    storage: Storage
    if settings.database_url is not None:
        check_driver(settings)
        from cutout_mcp.core.storage.postgres import PostgresStorage

        postgres = PostgresStorage(settings.database_url.get_secret_value(), clock)
        await postgres.open()
        storage = postgres
    else:
        storage = await anyio.to_thread.run_sync(_open_sqlite, settings, clock)
    try:
        yield storage
    finally:
        with anyio.CancelScope(shield=True):
            await storage.aclose()


def _open_sqlite(settings: Settings, clock: Clock | None) -> SqliteStorage:
    """The ledger in CUTOUT_STATE_DIR, or a `StorageError` that says what is wrong and what to do."""
    try:
        return SqliteStorage.open_in(settings.state_dir, clock)
    except sqlite3.OperationalError as exc:
        if is_busy(exc):  # a private in-memory ledger would break the guarantees shared with them
            raise StorageError(
                f"The job ledger in {settings.state_dir} stayed locked by another cutout-mcp process for "
                f"{BUSY_TIMEOUT_MS // 1000} s ({exc}); try again."
            ) from exc
        raise _unusable_folder(settings, exc) from exc
    except (OSError, sqlite3.Error) as exc:
        raise _unusable_folder(settings, exc) from exc


def _unusable_folder(settings: Settings, exc: Exception) -> StorageError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return StorageError(
        f"The job ledger cannot be kept in {settings.state_dir} (CUTOUT_STATE_DIR): {reason}. Make that folder "
        "writable by this user, or set CUTOUT_STATE_DIR to one that is. The server did not start."
    )
