"""What an operator reads, in process: metrics that match the ledger, refusals by reason, readiness, JSON logs.

The real processes (a Prometheus scraping, an OTLP receiver, PostgreSQL stopped under `/readyz`, a SIGTERM
drain) are in tests/test_operations_e2e.py.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx
from mcp import Client
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from cutout_mcp.config import Settings
from cutout_mcp.core.inputs.image_rules import ImageRefusedError
from cutout_mcp.core.inputs.input_paths import PathRefusedError
from cutout_mcp.core.jobs.pace import PollPolicy
from cutout_mcp.core.jobs.watch import JobWatcher
from cutout_mcp.core.money.consent import SpendNotConfirmedError
from cutout_mcp.core.money.drain import StoppingError
from cutout_mcp.core.storage import BudgetExceededError
from cutout_mcp.errors import CutoutMcpError
from cutout_mcp.logs import call_fields, configure_logging
from cutout_mcp.server import build_server
from cutout_mcp.server.app import TOOL_NAMES
from cutout_mcp.server.boundary import refusal_reason
from cutout_mcp.server.ops.metrics import PrometheusMetrics
from cutout_mcp.upstream.models import UpstreamVideoJob

from .conftest import API_KEY, BASE_URL, FAST_RETRY, FakeClock, envelope, video_job
from .test_tools import EDIT, GENERATE, IMAGE, JOB_ID, RESULT, edit_answer
from .test_watch import GateClock

pytestmark = pytest.mark.anyio

PROMPT = "paint the cat a secret shade of teal"


def observed(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"metrics_addr": "127.0.0.1:9464", "preview": False, **changes})


def samples(metrics: PrometheusMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: PrometheusMetrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, frozenset(labels.items())), 0.0)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Client, Any]]:
    server = build_server(settings, clock=FakeClock(), retry=FAST_RETRY)
    async with Client(server) as client:
        yield client, server


async def test_credits_counted_equal_what_the_ledger_records_unknown_outcomes_included(
    settings: Settings, upstream: respx.MockRouter
) -> None:
    upstream.post(EDIT).mock(
        side_effect=[
            httpx.Response(200, json=edit_answer()),  # charged and recorded
            httpx.Response(503),  # may have charged: kept in the ledger, and counted
            httpx.Response(401),  # proves nothing was charged: released, not counted
        ]
    )
    upstream.post(GENERATE).respond(json=envelope(JOB_ID))
    upstream.get(RESULT).respond(json=envelope(video_job(status=1)))
    edit = {"prompt": PROMPT, "image_urls": [IMAGE], "model": "gpt-image-1"}
    async with serving(observed(settings, credit_budget=13)) as (client, server):
        answers = [await client.call_tool("edit_image", edit) for _ in range(3)]
        video = await client.call_tool("generate_video", {"image_url": IMAGE, "wait_seconds": 0})
        over = await client.call_tool("edit_image", edit)  # 4 + 4 + 5 spent: 4 more passes the budget
        spent = (await server.readiness.ledger.credits("local", 13)).spent_total
    assert [a.is_error for a in answers] == [False, True, True]
    assert video.is_error is False
    assert over.is_error is True
    assert "budget" in " ".join(getattr(b, "text", "") for b in over.content)
    metrics = server.metrics
    assert spent == 13
    edits = value(metrics, "cutout_credits_spent_total", tool="edit_image", model="gpt-image-1")
    videos = value(metrics, "cutout_credits_spent_total", tool="generate_video", model="image-to-video")
    assert (edits, videos) == (8, 5)
    assert edits + videos == spent
    assert value(metrics, "cutout_paid_calls_refused_total", reason="budget") == 1
    assert value(metrics, "cutout_upstream_request_duration_seconds_count", endpoint="edit", status="200") == 1
    assert value(metrics, "cutout_upstream_request_duration_seconds_count", endpoint="edit", status="503") == 1
    assert value(metrics, "cutout_upstream_request_duration_seconds_count", endpoint="generate", status="200") == 1
    call = {"mcp_method_name": "tools/call", "gen_ai_tool_name": "edit_image"}
    assert value(metrics, "mcp_server_operation_duration_seconds_count", **call, error_type="") == 1
    assert value(metrics, "mcp_server_operation_duration_seconds_count", **call, error_type="tool_error") == 3
    exposed = metrics.exposition().decode()
    for secret in (API_KEY, PROMPT, IMAGE, BASE_URL, "local"):
        assert secret not in exposed


async def test_a_tool_name_a_client_made_up_is_counted_as_other(settings: Settings) -> None:
    async with serving(observed(settings)) as (client, server):
        names = {tool.name for tool in (await client.list_tools()).tools}
        await client.call_tool("made_up_tool_with_a_long_name", {})
    assert names == TOOL_NAMES, "the metrics' tool names are the tools served"
    counted = [labels for name, labels in samples(server.metrics) if name.endswith("_count") and labels]
    tools = {dict(labels).get("gen_ai_tool_name") for labels in counted}
    assert "other" in tools
    assert "made_up_tool_with_a_long_name" not in str(counted)


class AllowanceSpent(CutoutMcpError):
    """A spending limit of the kind the allowance rules raise: its `limit` names the reason."""

    limit = "allowance"


def test_each_refusal_is_counted_under_its_reason() -> None:
    assert refusal_reason(BudgetExceededError(4, 10, 12)) == "budget"
    assert refusal_reason(SpendNotConfirmedError("the user said no.", 0)) == "confirmation"
    assert refusal_reason(ImageRefusedError("too small")) == "preflight"
    assert refusal_reason(PathRefusedError("hidden file")) == "input_path"
    assert refusal_reason(StoppingError()) == "stopping"
    assert refusal_reason(AllowanceSpent("daily allowance spent")) == "allowance"
    assert refusal_reason(CutoutMcpError("a job failed")) is None, "not a refusal: it may have been sent"


async def test_refusals_of_free_tools_are_not_counted(settings: Settings) -> None:
    async with serving(observed(settings)) as (client, server):
        result = await client.call_tool("get_video_result", {"id": -5})
    assert result.is_error is True
    assert not [key for key in samples(server.metrics) if key[0] == "cutout_paid_calls_refused_total"]


async def test_the_jobs_gauge_follows_the_jobs_being_watched() -> None:
    metrics = PrometheusMetrics()
    clock = GateClock()
    first_read = anyio.Event()
    states = iter([video_job(percentage=10), video_job(status=1)])

    async def read(job_id: int) -> UpstreamVideoJob:
        await first_read.wait()
        return UpstreamVideoJob.model_validate(next(states))

    watcher = JobWatcher(read, clock, PollPolicy())
    metrics.watch_jobs(watcher.statuses)
    async with watcher.running(), anyio.create_task_group() as tg:
        tg.start_soon(watcher.wait, JOB_ID, 600.0)
        await anyio.wait_all_tasks_blocked()
        assert value(metrics, "cutout_video_jobs", status="queued") == 1, "no reading yet"
        first_read.set()
        await anyio.wait_all_tasks_blocked()
        assert value(metrics, "cutout_video_jobs", status="processing") == 1
        assert value(metrics, "cutout_video_jobs", status="queued") == 0
        clock.gate.set()
    assert value(metrics, "cutout_video_jobs", status="processing") == 0, "a finished job is not watched"


async def test_readyz_says_ready_then_503_at_once_when_draining(settings: Settings) -> None:
    server = build_server(settings, clock=FakeClock(), retry=FAST_RETRY)
    app = server.streamable_http_app(host="127.0.0.1")
    async with Client(server):  # the lifespan opens the ledger
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pod-10-0-0-7:8000") as http:
            alive, ready = await http.get("/healthz"), await http.get("/readyz")
            server.drain.stopping = True
            draining = await http.get("/readyz")
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()["checks"]) == (200, {"ledger": "ok", "draining": False})
    assert draining.status_code == 503
    assert draining.json() == {"status": "not ready", "checks": {"ledger": "skipped: draining", "draining": True}}


async def test_readyz_needs_no_token_and_names_no_path(settings: Settings, tmp_path: Path) -> None:
    token = "alice:" + "t" * 32
    secured = settings.model_copy(update={"mcp_tokens": (SecretStr(token),)})
    server = build_server(secured, clock=FakeClock(), retry=FAST_RETRY)
    app = server.streamable_http_app(host="127.0.0.1")
    async with Client(server):
        server.readiness.ledger.close()  # the ledger fails: an outage as the check sees it
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
            mcp = await http.post("/mcp", json={})
            ready = await http.get("/readyz")
    assert mcp.status_code == 401
    assert ready.status_code == 503
    assert ready.json()["checks"]["ledger"] == "unavailable"
    assert str(tmp_path) not in ready.text
    assert "sqlite" not in ready.text.lower()


def test_json_logs_are_one_object_per_line_with_the_call_and_no_secret(settings: Settings) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging(settings.model_copy(update={"log_format": "json"}))
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        log = logging.getLogger("cutout_mcp.test")
        log.info("plain")
        with call_fields(tool="edit_image", principal="alice", job_id=JOB_ID):
            log.warning("upstream said %s", f"bad key {API_KEY}")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("httpx").setLevel(logging.NOTSET)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [entry["message"] for entry in lines] == ["plain", "upstream said bad key [REDACTED]"]
    assert lines[0]["level"] == "INFO"
    assert lines[0]["logger"] == "cutout_mcp.test"
    assert lines[0]["time"].endswith("Z")
    assert "T" in lines[0]["time"]
    assert "tool" not in lines[0]
    assert (lines[1]["tool"], lines[1]["principal"], lines[1]["job_id"]) == ("edit_image", "alice", JOB_ID)
    assert API_KEY not in stream.getvalue()


def test_metrics_address_is_checked_and_a_bare_port_means_loopback() -> None:
    assert Settings.load({"CUTOUT_METRICS_ADDR": "9464"}).metrics_addr == "127.0.0.1:9464"
    assert Settings.load({"CUTOUT_METRICS_ADDR": "0.0.0.0:9464"}).metrics_addr == "0.0.0.0:9464"
    assert Settings.load({"CUTOUT_METRICS_ADDR": "[::1]:9464"}).metrics_addr == "[::1]:9464"
    assert Settings.load({"CUTOUT_LOG_FORMAT": "JSON"}).log_format == "json"
    for bad in ("host:", "99999", "a b:80"):
        with pytest.raises(CutoutMcpError, match="CUTOUT_METRICS_ADDR"):
            Settings.load({"CUTOUT_METRICS_ADDR": bad})
