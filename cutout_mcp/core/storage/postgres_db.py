"""The PostgreSQL connection pool under `PostgresStorage`: opening it (with the schema migrated), borrowing a
connection for one statement or one short transaction, and the one place a driver error is translated.

psycopg 3 with its async connection pool (the `postgres` extra). The pool is opened in the server's
lifespan and closed at exit; each call borrows a connection for one statement or one short
transaction, never across an upstream request, so a pool of `POOL_MAX_SIZE` serves any number of
waiting jobs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from cutout_mcp.clock import Clock, SystemClock
from cutout_mcp.core.storage import schema
from cutout_mcp.core.storage.base import StorageError
from cutout_mcp.core.storage.postgres_url import address, describe, redact

logger = logging.getLogger(__name__)

POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 10
"""Connections per replica: statements are short, so a few serve hundreds of waiting jobs."""
START_SECONDS = 3.0
"""Bound on reaching the database at start-up: an unreachable one stops the server within it."""
CALL_SECONDS = 2.0
"""Bound on waiting for a connection during a call: in an outage each call is refused within it (statements
are short, so a healthy pool hands one out in milliseconds), and the pool reconnects by itself."""
EXTRA_HINT = "pip install 'cutout-mcp[postgres]'"


class PostgresDb:
    """A psycopg async pool for one database URL; `PostgresStorage` runs its statements through it."""

    def __init__(self, url: str, clock: Clock | None = None) -> None:
        try:
            from psycopg_pool import AsyncConnectionPool
        except ImportError as exc:  # the optional extra is missing: say which
            raise StorageError(
                f"CUTOUT_DATABASE_URL names a PostgreSQL database, but its driver is not installed: {EXTRA_HINT}."
            ) from exc
        self._url = url
        self._clock = clock or SystemClock()
        self._pool: Any = AsyncConnectionPool(
            url,
            min_size=POOL_MIN_SIZE,
            max_size=POOL_MAX_SIZE,
            open=False,
            timeout=CALL_SECONDS,
            kwargs={"autocommit": True, "connect_timeout": max(2, int(START_SECONDS))},
            name="cutout-mcp",
        )

    def _error(self, exc: Exception) -> StorageError:
        """The one place a database failure is translated (without the URL's password)."""
        return StorageError(
            f"The PostgreSQL database at {describe(self._url)} cannot be used ({redact(str(exc), self._url)}). "
            "Check CUTOUT_DATABASE_URL and that the database is reachable."
        )

    async def open(self) -> None:
        """Connect (within `START_SECONDS`), create or upgrade the schema (one replica at a time), open the pool."""
        import psycopg

        try:
            with anyio.fail_after(START_SECONDS):
                conn = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=max(2, int(START_SECONDS))
                )
        except (psycopg.Error, TimeoutError) as exc:
            reason = f"no answer within {START_SECONDS:g} s" if isinstance(exc, TimeoutError) else _first_line(exc)
            raise StorageError(
                f"Cannot reach the PostgreSQL {address(self._url)} (CUTOUT_DATABASE_URL): "
                f"{redact(reason, self._url)}. Check that PostgreSQL is running there and accepts connections "
                "from this machine, and that the URL names the right host, port and database. The server did not start."
            ) from None
        try:
            async with conn:
                await _migrate(conn)
            await self._pool.open(wait=True, timeout=START_SECONDS)
        except (psycopg.Error, schema.NewerSchemaError) as exc:
            await self._pool.close()
            raise self._error(exc) from None
        except TimeoutError:
            await self._pool.close()
            raise self._error(TimeoutError(f"no pool connection within {START_SECONDS:g} s")) from None
        logger.info("Using the PostgreSQL database at %s", describe(self._url))

    async def aclose(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _cursor(self, *, transaction: bool) -> AsyncIterator[Any]:
        import psycopg
        from psycopg.rows import dict_row

        try:
            async with self._pool.connection() as conn:
                if transaction:
                    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                        yield cur
                else:
                    async with conn.cursor(row_factory=dict_row) as cur:
                        yield cur
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def _transaction(self) -> Any:
        return self._cursor(transaction=True)

    async def _one(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        async with self._cursor(transaction=False) as cur:
            await cur.execute(sql, params)
            row: dict[str, Any] | None = await cur.fetchone()
            return row

    async def _all(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        async with self._cursor(transaction=False) as cur:
            await cur.execute(sql, params)
            rows: list[dict[str, Any]] = await cur.fetchall()
            return rows

    async def _execute(self, sql: str, params: tuple[Any, ...]) -> int:
        async with self._cursor(transaction=False) as cur:
            await cur.execute(sql, params)
            return int(cur.rowcount)


async def _migrate(conn: Any) -> None:
    """Create or upgrade the schema, holding the advisory lock every starting replica takes."""
    from psycopg.rows import dict_row

    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT pg_advisory_xact_lock(%s)", (schema.SCHEMA_LOCK_ID,))
        await cur.execute(schema.VERSION_TABLE)
        await cur.execute("SELECT MAX(version) AS version FROM schema_version")
        row = await cur.fetchone()
        steps = schema.pending(int(row["version"] or 0), schema.POSTGRES)
        for number, statements in steps:
            for statement in statements:
                await cur.execute(statement)
            logger.info("Database schema upgraded to version %s", number)
        if steps:
            await cur.execute("DELETE FROM schema_version")
            await cur.execute("INSERT INTO schema_version (version) VALUES (%s)", (schema.VERSION,))


def _first_line(exc: Exception) -> str:
    """A driver message's line that matters: libpq puts the cause after the last `failed: `."""
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return line.rsplit("failed: ", 1)[-1]
