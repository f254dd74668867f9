"""A ledger that cannot be trusted stops the real `cutout-mcp` process with one message, and stays as it was.

Paid calls without the ledger would go unrecorded (no double-charge guard, no budget, no job list),
so the server refuses to start rather than run on a private in-memory ledger. Each test breaks the
file for real, starts the installed console script, and checks the message and the file's hash.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from cutout_mcp.core.storage import FILE_NAME, SqliteStorage, schema

pytestmark = pytest.mark.e2e

CUTOUT_MCP = str(Path(sys.executable).with_name("cutout-mcp"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start(state_dir: Path) -> subprocess.CompletedProcess[str]:
    """The stdio server as a client would start it, its stdin closed (it must stop before reading any)."""
    env = {**os.environ, "CUTOUT_STATE_DIR": str(state_dir), "CUTOUT_API_KEY": "test-key", "CUTOUT_LOG_LEVEL": "INFO"}
    return subprocess.run(
        [CUTOUT_MCP], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False
    )


def real_ledger(state_dir: Path, jobs: int = 200) -> Path:
    """A ledger made by the server's own storage, with `jobs` recorded video jobs, closed cleanly."""

    async def fill() -> None:
        storage = SqliteStorage.open_in(state_dir)
        try:
            for job_id in range(1, jobs + 1):
                charge = await storage.reserve("local", "video", 5, None)
                await storage.record_video_job(charge, job_id, "local", f"https://example.com/{job_id}.jpg", "p", 5)
        finally:
            storage.close()

    anyio.run(fill)
    path = state_dir / FILE_NAME
    assert not (state_dir / f"{FILE_NAME}-wal").exists(), "a clean close leaves everything in the file"
    return path


def assert_refused(state_dir: Path, path: Path, before: str, what: str) -> str:
    run = start(state_dir)
    assert run.returncode != 0, "the server must not run on a ledger it cannot trust"
    message = run.stderr
    assert str(path) in message
    assert "CUTOUT_STATE_DIR" in message
    assert what in message
    assert "Traceback" not in message
    assert "in memory" not in message.lower()
    assert digest(path) == before, "the damaged ledger is left byte for byte as it was"
    return message


def test_a_ledger_that_is_not_a_database_stops_the_server(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / FILE_NAME
    path.write_bytes(os.urandom(64 * 1024))
    message = assert_refused(tmp_path, path, digest(path), "not an SQLite database")
    assert "move it aside" in message


def test_a_ledger_with_damaged_pages_stops_the_server(tmp_path: Path) -> None:
    path = real_ledger(tmp_path, jobs=400)
    data = bytearray(path.read_bytes())
    page = 4096
    pages = len(data) // page
    assert pages > 8
    for number in range(pages // 2, pages // 2 + 3):  # three pages in the middle, each header kept
        data[number * page + 100 : number * page + 900] = os.urandom(800)
    path.write_bytes(bytes(data))
    message = assert_refused(tmp_path, path, digest(path), "damaged")
    assert "move it aside" in message


def test_a_ledger_from_a_newer_version_stops_the_server(tmp_path: Path) -> None:
    path = real_ledger(tmp_path, jobs=1)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = ?", (schema.VERSION + 1,))
    db.close()
    message = assert_refused(tmp_path, path, digest(path), "written by a newer cutout-mcp")
    assert "Upgrade cutout-mcp" in message


def test_a_ledger_that_cannot_be_migrated_stops_the_server(tmp_path: Path) -> None:
    """A version-1 ledger that already holds a table the next step creates: the upgrade fails, and rolls back."""
    path = tmp_path / FILE_NAME
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    for statement in schema.SQLITE[0]:
        db.execute(statement)
    db.execute(schema.VERSION_TABLE)
    db.execute("INSERT INTO schema_version (version) VALUES (1)")
    db.execute("CREATE TABLE guards (unexpected TEXT)")
    db.close()
    assert_refused(tmp_path, path, digest(path), "its schema cannot be brought up to date")


def test_a_state_folder_that_cannot_be_written_stops_the_server(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be")
    run = start(blocker)
    assert run.returncode != 0
    assert "CUTOUT_STATE_DIR" in run.stderr
    assert str(blocker) in run.stderr
    assert "Traceback" not in run.stderr


def test_a_sound_ledger_still_starts(tmp_path: Path) -> None:
    """The checks refuse only what is wrong: the same ledger, undamaged, serves (here: until stdin closes)."""
    real_ledger(tmp_path, jobs=3)
    run = start(tmp_path)
    assert run.returncode == 0, run.stderr
    assert "cannot be used" not in run.stderr
