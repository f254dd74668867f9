"""`cutout-mcp usage`: the operator's report equals what the ledger recorded, on both backends, end to end.

The ledger is seeded through the real paid path (several callers, both tools, several models, several
UTC days on a fake clock, unknown outcomes from timeouts, a refused call that is released), then the
command is run as an operator would, in a subprocess, in each format.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from mcp.server.auth.provider import AccessToken, principal_components
from mcp.server.request_state import compact_json

from cutout_mcp.config import Settings
from cutout_mcp.config.allowances import principal_name
from cutout_mcp.core import edits
from cutout_mcp.core.context import open_context
from cutout_mcp.core.jobs import videos
from cutout_mcp.core.storage import FILE_NAME, schema
from cutout_mcp.server.auth import NamedToken, StaticTokenVerifier
from cutout_mcp.server.principal import LOCAL
from cutout_mcp.upstream.errors import CutoutError

from .conftest import API_KEY, BASE_URL, FAST_RETRY, FakeClock, envelope
from .test_tools import EDIT, GENERATE, IMAGE, edit_answer

pytestmark = pytest.mark.anyio

PASSWORD = "s3cret-Ledger-pw"
"""Put in the PostgreSQL URL (the throwaway cluster trusts local users, so it is not checked): it must never show."""


def at(day: str, clock_time: str = "12:00:00") -> float:
    return datetime.fromisoformat(f"{day}T{clock_time}+00:00").timestamp()


async def alice_key() -> str:
    """How the server keys a CUTOUT_MCP_TOKEN user called alice."""
    token = await StaticTokenVerifier([NamedToken("alice", b"alice-token-1234567890")]).verify_token(
        "alice-token-1234567890"
    )
    assert token is not None
    return compact_json(principal_components(token))


def bob_key() -> str:
    """How the server keys an OAuth user whose subject is bob@example.com."""
    token = AccessToken(
        token="x", client_id="desktop-app", scopes=[], subject="bob@example.com", claims={"iss": "https://id.example"}
    )
    return compact_json(principal_components(token))


async def seed(settings: Settings) -> None:
    """Paid calls through the real path; what each one leaves in the ledger is in its comment."""
    alice, bob = await alice_key(), bob_key()
    clock = FakeClock()
    timeout = httpx.ReadTimeout("no answer")
    refused = httpx.ConnectError("refused")  # provably never reached cutout.pro: released, not counted
    edit_answers = [
        httpx.Response(200, json=edit_answer(id=11, model="gpt-image-1")),
        timeout,
        refused,
        refused,
        refused,
        httpx.Response(200, json=edit_answer(id=12, model="gemini-3-pro-image-preview")),
        httpx.Response(200, json=edit_answer(id=13, model="gpt-image-1")),
        httpx.Response(200, json=edit_answer(id=14, model="gpt-image-1")),
    ]
    video_answers = [httpx.Response(200, json=envelope(101)), httpx.Response(200, json=envelope(102)), timeout]
    with respx.mock(base_url=BASE_URL, assert_all_mocked=True) as upstream:
        upstream.post(EDIT).mock(side_effect=edit_answers)
        upstream.post(GENERATE).mock(side_effect=video_answers)
        async with open_context(settings, clock=clock, retry=FAST_RETRY) as app:

            async def edit(principal: str, when: float, model: str, prompt: str) -> None:
                clock.time = when
                plan = await edits.plan_edit(app, principal, prompt, [IMAGE], model)
                with contextlib.suppress(CutoutError):
                    await edits.edit_image(app, principal, plan)

            async def video(principal: str, when: float, prompt: str) -> None:
                clock.time = when
                with contextlib.suppress(CutoutError):
                    await videos.submit_video(app, principal, await videos.plan_video(app, principal, IMAGE, prompt))

            await edit(LOCAL, at("2026-03-01", "10:00:00"), "gpt-image-1", "blue")  # local, 4, recorded
            await video(alice, at("2026-03-01", "11:00:00"), "wave")  # alice, 5, recorded
            await edit(alice, at("2026-03-01", "12:00:00"), "gpt-image-1", "red")  # alice, 4, unknown (timeout)
            await edit(alice, at("2026-03-02", "08:00:00"), "gpt-image-1", "green")  # refused: released
            await edit(bob, at("2026-03-02", "09:00:00"), "gemini-3-pro-image-preview", "sky")  # bob, 15, recorded
            await video(bob, at("2026-03-02", "10:00:00"), "walk")  # bob, 5, recorded
            await edit(bob, at("2026-03-31", "00:00:00"), "gpt-image-1", "dawn")  # bob, 4, recorded
            await video(bob, at("2026-03-31", "23:59:59"), "dusk")  # bob, 5, unknown (timeout)
            await edit(LOCAL, at("2026-04-01", "00:00:00"), "gpt-image-1", "april")  # local, 4, recorded


def ledger_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every charge as the ledger holds it, and the spend counter, read directly."""
    sql = "SELECT principal, kind, detail, credits, ref_id, created_at, (SELECT spent FROM spend) AS spent FROM charges"
    if settings.database_url is None:
        db = sqlite3.connect(settings.state_dir / FILE_NAME)
        db.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in db.execute(sql)]
        finally:
            db.close()
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(settings.database_url.get_secret_value(), row_factory=dict_row) as conn:
        return list(conn.execute(sql).fetchall())


def files(state: Path) -> dict[str, str]:
    """The ledger's files by content; the shared-memory index (`-shm`) is where readers mark their place."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in state.iterdir() if not p.name.endswith("-shm")}


def run_usage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CUTOUT_")}
    return subprocess.run(
        [sys.executable, "-m", "cutout_mcp", "usage", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Settings, dict[str, str]]:
    """Settings for a ledger on one backend, and the environment that points the command at it."""
    base = {"api_key": API_KEY, "base_url": BASE_URL, "preflight": False, "state_dir": tmp_path / "state"}
    if request.param == "sqlite":
        return Settings(**base), {"CUTOUT_STATE_DIR": str(tmp_path / "state")}
    url = request.getfixturevalue("database_url").replace(
        "postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@"
    )
    return Settings(**base, database_url=url), {"CUTOUT_DATABASE_URL": url}


async def test_the_report_s_totals_are_the_ledger_s_in_every_format(backend: tuple[Settings, dict[str, str]]) -> None:
    settings, env = backend
    await seed(settings)
    charges = ledger_rows(settings)
    assert len(charges) == 8, "the refused call was released, every other call left a charge"

    listed = run_usage(env, "--by", "principal", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert all(list(row) == ["principal", "calls", "credits", "unknown_calls", "unknown_credits"] for row in rows)
    by_name = {row["principal"]: row for row in rows}
    assert set(by_name) == {"local", "alice", "bob@example.com"}, "callers by the names people know them by"
    assert sum(row["credits"] for row in rows) == charges[0]["spent"] == sum(c["credits"] for c in charges)
    assert sum(row["unknown_credits"] for row in rows) == sum(c["credits"] for c in charges if c["ref_id"] is None)
    assert sum(row["calls"] for row in rows) == len(charges)
    expected = {
        "local": {"calls": 2, "credits": 8, "unknown_calls": 0, "unknown_credits": 0},
        "alice": {"calls": 2, "credits": 9, "unknown_calls": 1, "unknown_credits": 4},
        "bob@example.com": {"calls": 4, "credits": 29, "unknown_calls": 1, "unknown_credits": 5},
    }
    assert {name: {k: v for k, v in row.items() if k != "principal"} for name, row in by_name.items()} == expected

    march = run_usage(env, "--since", "2026-03-01", "--until", "2026-03-31", "--by", "day,tool", "--format", "csv")
    assert march.returncode == 0, march.stderr
    table = list(csv.DictReader(io.StringIO(march.stdout)))
    in_march = [c for c in charges if at("2026-03-01", "00:00:00") <= c["created_at"] < at("2026-04-01", "00:00:00")]
    assert sum(int(r["credits"]) for r in table) == sum(c["credits"] for c in in_march) == 42
    days = Counter({(r["day"], r["tool"]): int(r["calls"]) for r in table})
    assert days == Counter(
        {
            ("2026-03-01", "edit_image"): 2,
            ("2026-03-01", "generate_video"): 1,
            ("2026-03-02", "edit_image"): 1,
            ("2026-03-02", "generate_video"): 1,
            ("2026-03-31", "edit_image"): 1,
            ("2026-03-31", "generate_video"): 1,
        }
    ), "--until includes its whole day (23:59:59), and not a second of the next"

    models = run_usage(env, "--by", "model", "--by", "principal")
    assert models.returncode == 0, models.stderr
    lines = models.stdout.splitlines()
    assert lines[0].startswith("Paid calls recorded at any time (UTC) in ")
    assert lines[2].split() == ["model", "principal", "calls", "credits", "unknown", "calls", "unknown", "credits"]
    split = [line.split() for line in lines]
    assert ["gpt-image-1", "alice", "1", "4", "1", "4"] in split, "an unknown edit keeps its model"
    assert not any(line.startswith("(not recorded)") for line in lines)
    assert ["gemini-3-pro-image-preview", "bob@example.com", "1", "15", "0", "0"] in split
    assert ["image-to-video", "bob@example.com", "2", "10", "1", "5"] in split
    assert lines[-5].split() == ["total", "8", "46", "2", "9"]
    assert "may not have charged them" in models.stdout
    for result in (listed, march, models):
        assert PASSWORD not in result.stdout + result.stderr


async def test_the_report_neither_writes_nor_waits_for_a_server_holding_the_write_lock(tmp_path: Path) -> None:
    """A ledger at an older schema version stays as it is (no migration), byte for byte, and a server
    mid-write (holding SQLite's write lock) does not hold the report up."""
    state = tmp_path / "state"
    state.mkdir()
    path = state / FILE_NAME
    server = sqlite3.connect(path, isolation_level=None)
    server.execute("PRAGMA journal_mode = WAL")
    for statement in (*schema.SQLITE[0], *schema.SQLITE[1]):
        server.execute(statement)
    server.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    server.execute("INSERT INTO schema_version VALUES (2)")
    server.execute(
        "INSERT INTO charges (principal, kind, ref_id, detail, credits, created_at) VALUES "
        "('local', 'edit', 7, 'seedream-4.0', 4, ?), ('local', 'video', NULL, NULL, 5, ?)",
        (at("2026-05-05"), at("2026-05-06")),
    )
    server.execute("BEGIN IMMEDIATE")  # a server in the middle of reserving a charge
    server.execute("UPDATE spend SET spent = spent + 4")
    before = files(state)

    result = run_usage({"CUTOUT_STATE_DIR": str(state)}, "--by", "model", "--format", "json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"model": "image-to-video", "calls": 1, "credits": 5, "unknown_calls": 1, "unknown_credits": 5},
        {"model": "seedream-4.0", "calls": 1, "credits": 4, "unknown_calls": 0, "unknown_credits": 0},
    ]
    assert files(state) == before, "the ledger and its WAL are as they were"
    server.execute("COMMIT")  # and the server's write goes through
    server.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 2, "not migrated"
    db.close()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--since", "2026-02-30"], {}, "--since '2026-02-30' is not a date: write YYYY-MM-DD"),
        (["--until", "March"], {}, "--until 'March' is not a date"),
        (["--since", "2026-03-02", "--until", "2026-03-01"], {}, "--until 2026-03-01 is before --since 2026-03-02"),
        (["--by", "person"], {}, "--by 'person' is not one of principal, tool, model, day"),
        ([], {"CUTOUT_STATE_DIR": "{tmp}/nowhere"}, "No job ledger at {tmp}/nowhere/ledger.sqlite3"),
        (
            [],
            {"CUTOUT_DATABASE_URL": f"postgresql://cutout:{PASSWORD}@127.0.0.1:1/jobs?connect_timeout=2"},
            "The PostgreSQL database at postgresql://127.0.0.1:1/jobs cannot be read",
        ),
    ],
)
def test_a_report_that_cannot_be_made_says_why_in_one_line(
    args: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    env = {"CUTOUT_STATE_DIR": str(tmp_path / "state"), **{k: v.format(tmp=tmp_path) for k, v in env.items()}}
    result = run_usage(env, *args)
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.startswith(f"cutout-mcp: {message.format(tmp=tmp_path)}")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr


def test_a_foreign_file_is_not_taken_for_a_ledger(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    db = sqlite3.connect(tmp_path / "state" / FILE_NAME)
    db.execute("CREATE TABLE notes (body TEXT)")
    db.commit()
    db.close()
    result = run_usage({"CUTOUT_STATE_DIR": str(tmp_path / "state")})
    assert result.returncode == 1
    assert (
        result.stderr
        == f"cutout-mcp: {tmp_path / 'state' / FILE_NAME} is not a cutout-mcp job ledger (it has no charges).\n"
    )


def test_an_empty_ledger_reports_nothing_in_each_format(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(state / FILE_NAME)
    for statement in schema.SQLITE[0]:
        db.execute(statement)
    db.commit()
    db.close()
    env = {"CUTOUT_STATE_DIR": str(state)}
    assert run_usage(env, "--format", "json").stdout == "[]\n"
    assert run_usage(env, "--format", "csv", "--by", "principal,day").stdout == (
        "principal,day,calls,credits,unknown_calls,unknown_credits\n"
    )
    table = run_usage(env, "--since", "2026-01-01")
    assert table.stdout == f"No paid calls recorded since 2026-01-01 (UTC) in {state / FILE_NAME}.\n"


async def test_callers_are_named_as_people_know_them() -> None:
    assert principal_name(LOCAL) == "local"
    assert principal_name(await alice_key()) == "alice"
    assert principal_name(bob_key()) == "bob@example.com"
    client_only = compact_json(
        principal_components(AccessToken(token="x", client_id="ci-robot", scopes=[], claims={"iss": "https://id"}))
    )
    assert principal_name(client_only) == "ci-robot", "a client-credentials token has no subject"
    assert principal_name("[1, 2]") == "[1, 2]", "a key that is no triple is shown as it is"
