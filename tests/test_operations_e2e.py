"""Operating the real `cutout-mcp` process: probes, a real Prometheus, an OTLP receiver, JSON logs.

- `/readyz` turns 503 when PostgreSQL stops and 200 when it is back (the pool reconnects), and turns 503
  at once on SIGTERM while the paid call in flight still answers;
- Debian's `prometheus` scrapes the metrics listener, and a PromQL query returns the credits spent;
- an OTLP/HTTP receiver in the test gets the spans of one `edit_image` in the client's trace, the
  cutout.pro request under the tool's span, with no secret in any attribute; the JSON log lines of that
  call carry the same trace id.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from starlette.requests import Request
from starlette.responses import Response

from cutout_mcp.sandbox import Sandbox, SandboxConfig, run_sandbox

from .pgserver import PgServer
from .standin import run_standin
from .test_e2e import free_port, wait_for_port
from .test_shutdown import CUTOUT_MCP, GENERATE, IMAGE, JOB, PROMPT, RESULT, SlowUpstream, environment
from .test_shutdown import text_of as shutdown_text

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

OUTAGE_SECONDS, RECOVERY_SECONDS = 3.0, 5.0
"""The promises: 503 within 3 s of a database outage, 200 within 5 s of its end."""
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with run_sandbox(SandboxConfig(queue_seconds=0.2, queue_depth=1, job_seconds=0.5)) as running:
        yield running


@asynccontextmanager
async def cutout_mcp(env: dict[str, str], *args: str, stderr: Any = None) -> AsyncIterator[subprocess.Popen[bytes]]:
    """The installed server on streamable HTTP at `env["PORT"]`, killed if a test leaves it running."""
    process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped in finally
        [CUTOUT_MCP, "--transport", "streamable-http", "--port", env["PORT"], *args],
        env={k: v for k, v in env.items() if k != "PORT"},
        stdout=subprocess.DEVNULL,
        stderr=stderr or subprocess.DEVNULL,
    )
    try:
        await wait_for_port(int(env["PORT"]), process)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


async def until(check: Callable[[], Awaitable[bool]], bound: float, what: str) -> None:
    """Poll `check` until it holds, failing after `bound` seconds (the promise being tested)."""
    try:
        with anyio.fail_after(bound):
            while not await check():  # noqa: ASYNC110 - a process outside, polled as a probe would
                await anyio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"{what} not within {bound:g} s")


async def readyz(port: int) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as http:
        return await http.get(f"http://127.0.0.1:{port}/readyz")


async def test_readyz_follows_a_postgresql_outage_and_names_no_host(
    postgres: PgServer, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PORT": str(port),
        "CUTOUT_DATABASE_URL": database_url,
        "CUTOUT_API_KEY": "test-key",
        "CUTOUT_STATE_DIR": str(tmp_path / "state"),
        "CUTOUT_LOG_LEVEL": "WARNING",
    }
    async with cutout_mcp(env):
        first = await readyz(port)
        assert first.status_code == 200, first.text
        await anyio.to_thread.run_sync(postgres.halt)
        try:
            await until(lambda: _status_is(port, 503), OUTAGE_SECONDS, "503 after PostgreSQL stopped")
            down = await readyz(port)
        finally:
            await anyio.to_thread.run_sync(postgres.resume)
        await until(lambda: _status_is(port, 200), RECOVERY_SECONDS, "200 after PostgreSQL came back")
    assert down.json()["checks"]["draining"] is False
    assert down.json()["checks"]["ledger"] in ("unavailable", "no answer within 1 s")
    assert str(postgres.dir) not in down.text
    assert "postgres" not in down.text.lower()


async def _status_is(port: int, status: int) -> bool:
    return (await readyz(port)).status_code == status


async def test_sigterm_makes_readyz_503_at_once_while_the_call_in_flight_answers(tmp_path: Path) -> None:
    slow = SlowUpstream()
    async with run_standin({GENERATE: slow.generate, RESULT: slow.result}) as upstream:
        port, metrics_port = free_port(), free_port()
        env = environment(upstream, tmp_path / "state") | {
            "PORT": str(port),
            "CUTOUT_METRICS_ADDR": str(metrics_port),
        }
        async with cutout_mcp(env) as process, Client(f"http://127.0.0.1:{port}/mcp") as client:
            assert (await readyz(port)).status_code == 200
            answer: dict[str, Any] = {}
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    answer["result"] = await client.call_tool("generate_video", {"image_url": IMAGE, "prompt": PROMPT})

                tg.start_soon(call)
                await slow.arrived.wait()
                process.send_signal(signal.SIGTERM)
                await until(lambda: _status_is(port, 503), 1.0, "503 on SIGTERM")
                draining = await readyz(port)
                on_listener = await readyz(metrics_port)
                async with httpx.AsyncClient() as http:
                    alive = await http.get(f"http://127.0.0.1:{port}/healthz")
                slow.release.set()
            code = await anyio.to_thread.run_sync(process.wait, 20)
    assert draining.json() == {"status": "not ready", "checks": {"ledger": "skipped: draining", "draining": True}}
    assert on_listener.status_code == 503, "the metrics listener's probe says the same"
    assert alive.status_code == 200, "alive while draining: not killed mid-drain"
    result = answer["result"]
    assert result.is_error is False, shutdown_text(result)
    assert result.structured_content["id"] == JOB
    assert code == 0


PROMETHEUS = shutil.which("prometheus")


@pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus binary: apt-get install prometheus")
async def test_a_real_prometheus_scrapes_the_credits_of_the_calls_made(sandbox: Sandbox, tmp_path: Path) -> None:
    assert PROMETHEUS is not None
    port, metrics_port, prom_port = free_port(), free_port(), free_port()
    env = sandbox_env(sandbox, tmp_path) | {"PORT": str(port), "CUTOUT_METRICS_ADDR": f"127.0.0.1:{metrics_port}"}
    async with cutout_mcp(env), Client(f"http://127.0.0.1:{port}/mcp") as client:
        image = sandbox.url("/samples/photo.jpg")
        for model in ("gpt-image-1", "gemini-3-pro-image-preview"):
            edited = await client.call_tool(
                "edit_image", {"prompt": "warmer light", "image_urls": [image], "model": model}
            )
            assert edited.is_error is False, shutdown_text(edited)
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: cutout-mcp\n    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
        )
        async with prometheus(config, tmp_path / "tsdb", prom_port) as query:
            wanted = 'sum(cutout_credits_spent_total{job="cutout-mcp"})'

            async def scraped() -> bool:
                return await query(wanted) == 19.0  # 4 + 15 credits

            await until(scraped, 60, "the credits in Prometheus")
            by_model = await query('cutout_credits_spent_total{model="gemini-3-pro-image-preview"}')
    assert by_model == 15.0
    assert sandbox.state.charges == 2


@asynccontextmanager
async def prometheus(config: Path, data: Path, port: int) -> AsyncIterator[Callable[[str], Awaitable[float | None]]]:
    """Debian's Prometheus on loopback with a temp config and data dir; yields a PromQL query (one value)."""
    assert PROMETHEUS is not None
    process = subprocess.Popen(  # noqa: ASYNC220 - stopped in finally
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    async def query(promql: str) -> float | None:
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": promql})
        result = answer.json()["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    try:
        await wait_for_port(port, process)  # type: ignore[arg-type]
        yield query
    finally:
        process.terminate()
        process.wait(20)


def sandbox_env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "CUTOUT_SANDBOX": "1",
        "CUTOUT_API_KEY": sandbox.api_key,
        "CUTOUT_BASE_URL": sandbox.base_url,
        "CUTOUT_STATE_DIR": str(tmp_path / "state"),
        "CUTOUT_PREVIEW": "off",
    }


class OtlpReceiver:
    """An OTLP/HTTP trace receiver: decodes each export (protobuf) into plain span records."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []

    async def traces(self, request: Request) -> Response:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        export = ExportTraceServiceRequest.FromString(await request.body())
        for resource in export.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}.get("service.name")
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: _plain(a.value) for a in span.attributes}
                    self.spans.append(
                        {
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "attributes": attributes,
                            "service": service,
                        }
                    )
        return Response(b"", media_type="application/x-protobuf")


def _plain(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


async def test_one_edit_is_traced_in_the_clients_trace_and_logged_with_its_trace_id(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    pytest.importorskip("opentelemetry.sdk", reason="the otel extra: pip install -e '.[test]'")
    pytest.importorskip("opentelemetry.proto", reason="opentelemetry-proto: pip install -e '.[test]'")
    receiver = OtlpReceiver()
    async with run_standin({"/v1/traces": receiver.traces}) as collector:
        port = free_port()
        env = sandbox_env(sandbox, tmp_path) | {
            "PORT": str(port),
            "CUTOUT_LOG_FORMAT": "json",
            "CUTOUT_LOG_LEVEL": "INFO",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.base_url,
        }
        log = tmp_path / "stderr.jsonl"
        with log.open("wb") as stderr:
            async with cutout_mcp(env, stderr=stderr) as process, Client(f"http://127.0.0.1:{port}/mcp") as client:
                image = sandbox.url("/samples/photo.jpg")
                traceparent = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
                edited = await client.call_tool(
                    "edit_image",
                    {"prompt": "warmer light", "image_urls": [image]},
                    meta={"traceparent": traceparent},  # type: ignore[typeddict-unknown-key]
                )
                assert edited.is_error is False, shutdown_text(edited)
                process.send_signal(signal.SIGTERM)  # the spans are flushed on the way out
                assert await anyio.to_thread.run_sync(process.wait, 20) == 0
    spans = [s for s in receiver.spans if s["trace_id"] == TRACE_ID]
    by_id = {s["span_id"]: s for s in spans}
    tool = next(s for s in spans if s["name"] == "tools/call edit_image")
    assert tool["parent"] == CLIENT_SPAN, "the server span continues the client's"
    assert tool["service"] == "cutout-mcp"
    upstream = next(s for s in spans if s["name"] == "POST /api/v1/image/edit")
    assert tool["span_id"] in ancestors(upstream, by_id), "the cutout.pro request is under the tool's span"
    assert upstream["attributes"]["http.response.status_code"] == 200
    assert upstream["attributes"]["url.full"] == sandbox.base_url + "/api/v1/image/edit"
    names = {s["name"] for s in spans}
    assert {"cutout.preflight", "cutout.ledger.reserve", "cutout.ledger.record"} <= names
    every_value = json.dumps([s["attributes"] for s in receiver.spans])
    for secret in (sandbox.api_key, "warmer light", "Signature="):
        assert secret not in every_value

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    in_call = [line for line in lines if line.get("trace_id") == TRACE_ID]
    assert in_call, "the call's log lines carry its trace id"
    assert all(line["tool"] == "edit_image" for line in in_call if "tool" in line)
    assert sandbox.api_key not in log.read_text()


def ancestors(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[str]:
    found: list[str] = []
    while span["parent"] in by_id:
        found.append(span["parent"])
        span = by_id[span["parent"]]
    return found


async def test_on_stdio_the_metrics_listener_serves_metrics_and_probes(sandbox: Sandbox, tmp_path: Path) -> None:
    metrics_port = free_port()
    env = sandbox_env(sandbox, tmp_path) | {"CUTOUT_METRICS_ADDR": str(metrics_port)}
    async with Client(StdioServerParameters(command=CUTOUT_MCP, env=env)) as client:
        image = sandbox.url("/samples/photo.jpg")
        edited = await client.call_tool("edit_image", {"prompt": "warmer light", "image_urls": [image]})
        assert edited.is_error is False, shutdown_text(edited)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics_port}") as http:
            scraped, ready = await http.get("/metrics"), await http.get("/readyz")
    assert ready.status_code == 200
    assert 'cutout_credits_spent_total{model="gemini-2.5-flash-image",tool="edit_image"} 4.0' in scraped.text
    assert 'mcp_server_operation_duration_seconds_count{error_type="",gen_ai_tool_name="edit_image"' in scraped.text
