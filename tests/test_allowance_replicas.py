"""Allowances across three `cutout-mcp` replicas sharing one real PostgreSQL, against one sandbox.

Three principals fire many concurrent paid edits, each HTTP request sent to the next replica; each
principal edits with a model of its own (all at the same price), so the sandbox's record says whose
edit it made. Per principal: what was accepted fits the limit exactly, every other call was refused
naming the limit, and the sandbox, the ledger and what the clients were told agree call for call.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from cutout_mcp.config.allowances import principal_name
from cutout_mcp.sandbox import Sandbox, SandboxConfig, run_sandbox

from .test_allowance_e2e import upstream_stats
from .test_e2e import EDIT, text_of
from .test_replicas import RoundRobin, replicas

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PRICE = 4
CALLS_EACH = 9
TOKENS = {
    "alice": "alice-token-0123456789abcdef",
    "bob": "bob-token-0123456789abcdef0",
    "carol": "carol-token-0123456789abcdef",
}
MODELS = {"alice": "gpt-image-1", "bob": "gemini-2.5-flash-image", "carol": "qwen-image-edit-plus"}
"""One model per principal, all at PRICE credits: the sandbox's record of an edit then says whose it was."""
POLICY = """
[default]
credits = 0

[principals.alice]
credits = 22

[principals.bob]
credits = 13

[principals.carol]
credits = 1000
paid_calls_per_minute = 4
"""
FITS = {"alice": 22 // PRICE, "bob": 13 // PRICE, "carol": 4}
"""alice and bob: as many calls as their allowance holds; carol: as many as her rate allows in a minute."""
REFUSAL = {
    "alice": "alice's allowance of 22 credits per month has 2 left (20 used this period)",
    "bob": "bob's allowance of 13 credits per month has 1 left (12 used this period)",
    "carol": "carol may start 4 paid calls per minute and has started that many in the last 60 s",
}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """Edits take a moment, so the calls of all three principals are in flight together."""
    async with run_sandbox(SandboxConfig(edit_seconds=0.3, video_format="gif")) as running:
        yield running


@dataclass
class Outcomes:
    """What one principal's client was told."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    credits: dict[str, Any] = field(default_factory=dict)
    ports: set[int] = field(default_factory=set)


@asynccontextmanager
async def spread_client(ports: list[int], user: str) -> AsyncIterator[tuple[Client, RoundRobin]]:
    """The official client as `user`, each of its HTTP requests sent to the next replica."""
    balancer = RoundRobin(ports)
    headers = {"Authorization": f"Bearer {TOKENS[user]}"}
    url = f"http://127.0.0.1:{ports[0]}/mcp"
    async with (
        httpx2.AsyncClient(transport=balancer, headers=headers, timeout=httpx2.Timeout(30)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client, balancer


async def fire(ports: list[int], user: str, image: str, outcomes: Outcomes) -> None:
    """CALLS_EACH concurrent edits as `user`, then the user's own credits as the server shows them."""
    args = {"prompt": f"{user}'s edit", "image_urls": [image], "model": MODELS[user]}
    async with spread_client(ports, user) as (client, balancer):

        async def one() -> None:
            result = await client.call_tool("edit_image", args)
            if result.is_error:
                outcomes.refused.append(text_of(result))
            else:
                outcomes.accepted.append(result.structured_content or {})

        async with anyio.create_task_group() as tg:
            for _ in range(CALLS_EACH):
                tg.start_soon(one)
        listed = await client.call_tool("list_video_jobs", {})
        outcomes.credits = (listed.structured_content or {})["credits"]
        outcomes.ports = set(balancer.sent)


async def ledger_charges(database_url: str) -> dict[str, list[tuple[int, int, str]]]:
    """Each principal's charges as the ledger recorded them: (edit id, credits, model)."""
    charges: dict[str, list[tuple[int, int, str]]] = {}
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute("SELECT principal, ref_id, credits, detail FROM charges WHERE kind = 'edit'")
        for principal, ref_id, credits, model in await cursor.fetchall():
            charges.setdefault(principal_name(principal), []).append((ref_id, credits, model))
    return charges


async def test_concurrent_paid_calls_of_three_principals_across_three_replicas_pass_no_limit(
    sandbox: Sandbox, database_url: str, tmp_path: Path
) -> None:
    policy = tmp_path / "allowances.toml"
    policy.write_text(POLICY)
    tokens = ",".join(f"{name}:{token}" for name, token in TOKENS.items())
    told = {user: Outcomes() for user in TOKENS}
    image = sandbox.url("/samples/photo.jpg")
    with anyio.fail_after(60):
        async with (
            replicas(
                sandbox,
                3,
                CUTOUT_DATABASE_URL=database_url,
                CUTOUT_MCP_TOKEN=tokens,
                CUTOUT_ALLOWANCES_FILE=str(policy),
            ) as group,
            anyio.create_task_group() as tg,
        ):
            for user in TOKENS:
                tg.start_soon(fire, group.ports, user, image, told[user])
    stats = await upstream_stats(sandbox)
    ledger = await ledger_charges(database_url)
    for user, outcomes in told.items():
        accepted_ids = {result["id"] for result in outcomes.accepted}
        assert outcomes.ports == set(group.ports), f"{user}'s requests reached every replica"
        assert len(outcomes.accepted) == FITS[user], (user, outcomes.refused)
        assert {result["credits_charged"] for result in outcomes.accepted} == {PRICE}
        assert len(outcomes.refused) == CALLS_EACH - FITS[user]
        for message in outcomes.refused:
            assert REFUSAL[user] in message, message
            assert f"this call costs {PRICE} credits" in message
            assert "Nothing was sent to cutout.pro or charged." in message
            if user == "carol":  # the rate says when the next paid call is allowed: within the minute
                wait = re.search(r"The next paid call is allowed in (\d+) s\.", message)
                assert wait is not None, message
                assert 1 <= int(wait.group(1)) <= 60
        upstream_ids = {edit["id"] for edit in stats["edits"] if edit["model"] == MODELS[user]}
        assert upstream_ids == accepted_ids, f"the sandbox made exactly {user}'s accepted edits"
        assert sorted(ledger[user]) == sorted((i, PRICE, MODELS[user]) for i in accepted_ids), "and the ledger"
        assert outcomes.credits["spent"] == FITS[user] * PRICE, "what the server tells the caller"
        assert outcomes.credits["allowance"]["used"] == FITS[user] * PRICE
    assert set(ledger) == set(TOKENS), "no charge for anyone else"
    assert stats["charges"] == stats["requests"][EDIT] == sum(FITS.values())
    assert stats["credits_spent"] == sum(FITS.values()) * PRICE
