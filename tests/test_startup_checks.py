"""Settings are checked before anything connects; the database is reached within a bound, at start and per call.

Each test starts the real `cutout-mcp` console script. A bad value stops it with one line naming the
variable (never the password, never a traceback unless CUTOUT_LOG_LEVEL=DEBUG); an unreachable
database stops it with one paragraph naming host, port and database; a database that stops while
the server runs refuses each call, and the server recovers by itself when it is back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.pgserver import PORT, PgServer, find_bindir

pytestmark = pytest.mark.e2e

CUTOUT_MCP = str(Path(sys.executable).with_name("cutout-mcp"))
PASSWORD = "s3cret-Passw0rd"


def start(env: dict[str, str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    base = {
        "PATH": os.environ.get("PATH", ""),
        "CUTOUT_STATE_DIR": str(tmp_path / "state"),
        "CUTOUT_API_KEY": "test-key",
    }
    began = time.monotonic()
    run = subprocess.run(
        [CUTOUT_MCP],
        env=base | env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return run, time.monotonic() - began


BAD_SETTINGS = [
    ("CUTOUT_DATABASE_URL", f"postgresql://cutout:{PASSWORD}@db.internal:notaport/jobs", "port"),
    ("CUTOUT_DATABASE_URL", f"postgresql://cutout:{PASSWORD}@/jobs?host=/run/pg&port=five", "port"),
    ("CUTOUT_DATABASE_URL", f"mysql://cutout:{PASSWORD}@db.internal/jobs", "postgresql://"),
    ("CUTOUT_BASE_URL", "http://127.0.0.1:port/", "port"),
    ("CUTOUT_WAIT_SECONDS", "forever", "number"),
    ("CUTOUT_HTTP_TIMEOUT", "0", "greater than 0"),
    ("CUTOUT_CREDIT_BUDGET", "-5", "greater than or equal to 0"),
    ("CUTOUT_PREVIEW", "sometimes", "boolean"),
    ("CUTOUT_LOG_LEVEL", "LOUD", "DEBUG"),
    ("CUTOUT_CONFIRM_SPEND", "maybe", "above:N"),
    ("CUTOUT_TASK_LEASE_SECONDS", "0.1", "greater than or equal to 1"),
    ("CUTOUT_OAUTH_ISSUER", "http://auth.example.com", "https"),
]


@pytest.mark.parametrize(("variable", "value", "rule"), BAD_SETTINGS, ids=[f"{v}={x[:24]}" for v, x, _ in BAD_SETTINGS])
def test_a_bad_setting_stops_the_server_with_one_line_naming_it(
    tmp_path: Path, variable: str, value: str, rule: str
) -> None:
    run, seconds = start({variable: value}, tmp_path)
    print(f"{variable}: exited {run.returncode} after {seconds:.2f} s")
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"cutout-mcp: Invalid configuration: {variable}: ")
    assert rule in lines[0]
    assert PASSWORD not in run.stderr
    assert not (tmp_path / "state").exists(), "nothing was opened before the settings were checked"


def test_the_traceback_is_shown_only_when_debug_asks_for_it(tmp_path: Path) -> None:
    url = f"postgresql://cutout:{PASSWORD}@127.0.0.1:1/jobs"
    quiet, _ = start({"CUTOUT_DATABASE_URL": url}, tmp_path)
    loud, _ = start({"CUTOUT_DATABASE_URL": url, "CUTOUT_LOG_LEVEL": "DEBUG"}, tmp_path)
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr
    assert PASSWORD not in quiet.stderr + loud.stderr


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgServer]:
    """A PostgreSQL cluster of this module's own: one test stops and restarts it."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl): apt-get install postgresql")
    pytest.importorskip("psycopg_pool", reason="psycopg-pool missing: pip install -e '.[test]'")
    server = PgServer(bindir)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("where", ["socket", "tcp"])
def test_an_unreachable_database_stops_the_server_with_one_paragraph(
    cluster: PgServer, tmp_path: Path, where: str
) -> None:
    if where == "socket":  # the real cluster's folder, a port it does not serve
        url = f"postgresql://cutout:{PASSWORD}@/jobs?host={cluster.dir}&port={PORT + 1}"
        host, port = str(cluster.dir), str(PORT + 1)
    else:
        url, host, port = f"postgresql://cutout:{PASSWORD}@127.0.0.1:1/jobs", "127.0.0.1", "1"
    run, seconds = start({"CUTOUT_DATABASE_URL": url}, tmp_path)
    print(f"unreachable database ({where}): exited {run.returncode} after {seconds:.2f} s")
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    paragraph = lines[0]
    assert f"database jobs on host {host}, port {port}" in paragraph
    assert "CUTOUT_DATABASE_URL" in paragraph
    assert PASSWORD not in run.stderr


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


@pytest.mark.anyio
async def test_a_database_outage_is_refused_per_call_and_recovers_by_itself(cluster: PgServer, tmp_path: Path) -> None:
    url = cluster.new_database()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CUTOUT_DATABASE_URL": url,
        "CUTOUT_API_KEY": "test-key",
        "CUTOUT_LOG_LEVEL": "ERROR",
        "CUTOUT_STATE_DIR": str(tmp_path / "state"),
    }
    async with Client(StdioServerParameters(command=CUTOUT_MCP, env=env)) as client:
        healthy = await client.call_tool("list_video_jobs", {})
        assert healthy.is_error is False, text_of(healthy)
        await anyio.to_thread.run_sync(cluster.halt)
        try:
            durations = []
            for _ in range(3):  # calls do not pile up: each is refused on its own
                began = time.monotonic()
                refused = await client.call_tool("list_video_jobs", {})
                durations.append(time.monotonic() - began)
                assert refused.is_error is True
                assert "PostgreSQL" in text_of(refused)
            print("refused during the outage after " + ", ".join(f"{d:.2f} s" for d in durations))
        finally:
            await anyio.to_thread.run_sync(cluster.resume)
        with anyio.fail_after(30):  # the pool reconnects on its own; no server restart
            while (back := await client.call_tool("list_video_jobs", {})).is_error:  # noqa: ASYNC110 - polls a process
                await anyio.sleep(0.25)
        assert back.is_error is False
