"""What seeing inside costs: core throughput with metrics on, and with traces exported, against both off.

The call-overhead method (`call_overhead.py`: every server up at once over stdio, interleaved rounds of
10 `edit_image` calls in flight against the stand-in edit endpoint, throughput pooled over the rounds)
for three servers that differ only in what they report:

- **core**: pre-flight and preview off, nothing reported (the default);
- **metrics on**: the same with `CUTOUT_METRICS_ADDR` (every request timed, credits and upstream
  requests counted in Prometheus metrics; nobody scrapes, as between two scrapes);
- **traces exported**: the same with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a loopback OTLP/HTTP
  sink in this process, which accepts every batch (needs the `otel` extra).

Targets: metrics on ≥ 0.95x of core, traces exported ≥ 0.85x.

    python bench/observability.py [--block N] [--rounds R]
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CUTOUT_MCP, Row, free_port
from bench.call_overhead import CONCURRENCY, OFF, Server, main_for, spread, take_turns, throughput_ratio
from bench.edit_upstream import run_edit_upstream

TARGET_METRICS = 0.95
TARGET_TRACES = 0.85


class _Sink(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def run_otlp_sink() -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback OTLP/HTTP endpoint that accepts every export; yields its URL and the batch sizes in bytes."""
    batches: list[int] = []

    async def traces(request: Request) -> Response:
        batches.append(len(await request.body()))
        return Response(b"", media_type="application/x-protobuf")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    app = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
    server = _Sink(uvicorn.Config(app, log_level="warning", lifespan="off"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
            await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}", batches
        finally:
            server.should_exit = True


async def run(block: int = 150, rounds: int = 30, latency_calls: int = 15) -> list[Row]:
    async with run_edit_upstream() as upstream, run_otlp_sink() as (sink, batches), AsyncExitStack() as stack:
        servers = (
            Server("core", (CUTOUT_MCP,), OFF),
            Server("metrics on", (CUTOUT_MCP,), {**OFF, "CUTOUT_METRICS_ADDR": str(free_port())}),
            Server("traces exported", (CUTOUT_MCP,), {**OFF, "OTEL_EXPORTER_OTLP_ENDPOINT": sink}),
        )
        tallies = await take_turns(servers, upstream, stack, block, rounds, latency_calls)
    core = tallies["core"]
    how = f"throughput at {CONCURRENCY}, pooled over {rounds} rounds of {block}; per round: median (quartiles)"
    rows = [Row("observability", f"core: {how}", f"{core.throughput(block):.0f} calls/s")]
    for name, target in (("metrics on", TARGET_METRICS), ("traces exported", TARGET_TRACES)):
        pooled, per_round = throughput_ratio(tallies[name], core, block)
        rows.append(
            Row(
                "observability",
                f"{name} / core: {how}",
                f"{pooled:.2f}x; {spread(per_round)}x",
                floor="1.00x",
                target=f">= {target}x",
                met=pooled >= target,
            )
        )
        added = tallies[name].cpu_ms_per_call(block) - core.cpu_ms_per_call(block)
        rows.append(
            Row(
                "observability",
                f"{name}: server CPU per call, added to core's (steadier than throughput on a busy machine)",
                f"{added:+.2f} ms",
                floor=f"{core.cpu_ms_per_call(block):.2f} ms",
            )
        )
    rows.append(
        Row("observability", "span batches the sink received (bytes, total)", f"{len(batches)}, {sum(batches)}")
    )
    return rows


if __name__ == "__main__":
    main_for(run, __doc__ or "")
