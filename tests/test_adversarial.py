"""Hostile input: fuzzed tool arguments in process, and protocol garbage over a real stdio server.

The fuzzing keeps one in-process session open (through a blocking portal, so
Hypothesis drives plain function calls) over an upstream that always
succeeds. That makes the rule simple: a tool error can only come from
argument checking, so an error must never have sent anything upstream.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mcp import Client

from cutout_mcp.config import Settings

from .conftest import API_KEY, BASE_URL, FakeClock, connect, envelope, video_job

# --- fuzzing every tool's arguments -------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
urls = st.one_of(
    st.sampled_from(
        [
            "https://img.example.com/cat.jpg",
            "http://img.example.com/cat.jpg",
            "https://user:pw@img.example.com/a.jpg",
            "ftp://img.example.com/a.jpg",
            "https://",
            " https://img.example.com/a b.jpg",
            "https://img.example.com/" + "a" * 3000,
            "javascript:alert(1)",
            "https://[::1/x",
            "https://img.example.com:99999/a.jpg",
        ]
    ),
    st.text(max_size=30).map(lambda tail: "https://" + tail),
    json_values,
)
numbers = st.one_of(st.floats(min_value=-10, max_value=1000, allow_nan=False), st.integers(-5, 10**6), json_values)
ids = st.one_of(
    st.integers(min_value=-(2**65), max_value=2**65),
    st.text(alphabet="0123456789 -+x", max_size=25),
    json_values,
)
extra_keys = st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=2)

TOOL_ARGUMENTS = {
    "generate_video": st.fixed_dictionaries(
        {},
        optional={
            "image_url": urls,
            "prompt": st.one_of(st.text(max_size=60), json_values),
            "wait_seconds": numbers,
        },
    ),
    "get_video_result": st.fixed_dictionaries({}, optional={"id": ids, "wait_seconds": numbers}),
    "edit_image": st.fixed_dictionaries(
        {},
        optional={
            "prompt": st.one_of(st.text(max_size=60), json_values),
            "image_urls": st.one_of(st.lists(urls, max_size=8), json_values),
            "model": st.one_of(st.sampled_from(["gpt-image-1", "seedream-4.0", "qwen-image-edit-plus"]), json_values),
            "aspect_ratio": st.one_of(st.sampled_from(["original", "16:9", "2:1"]), json_values),
        },
    ),
}


VALID: dict[str, dict[str, Any]] = {
    "generate_video": {"image_url": "https://img.example.com/cat.jpg", "prompt": "blink", "wait_seconds": 1},
    "get_video_result": {"id": "700842286474565"},
    "edit_image": {"prompt": "make it blue", "image_urls": ["https://img.example.com/cat.jpg"]},
}


class AlwaysFine:
    """An upstream that accepts everything, counting what it is sent."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        path = request.url.path
        if path.endswith("/generate"):
            return httpx.Response(200, json=envelope(700842286474565))
        if path.endswith("/getResult"):
            return httpx.Response(200, json=envelope(video_job(status=1)))
        return httpx.Response(
            200,
            json=envelope(
                {"id": 1, "imageUrl": "https://cdn.example.com/e.jpg", "status": 1, "createdAt": 1763547221159}
            ),
        )


@pytest.fixture
def fuzz_session(tmp_path: Path) -> Iterator[tuple[Any, Client, AlwaysFine]]:
    upstream = AlwaysFine()
    fuzz_settings = Settings(
        api_key=API_KEY, base_url=BASE_URL, wait_seconds=5, preflight=False, state_dir=tmp_path / "state"
    )
    session = connect(fuzz_settings, "auto", FakeClock(), http_transport=httpx.MockTransport(upstream))
    with start_blocking_portal(backend="asyncio") as portal, portal.wrap_async_context_manager(session) as client:
        yield portal, client, upstream


@pytest.mark.parametrize("tool", sorted(TOOL_ARGUMENTS))
def test_any_arguments_give_a_result_or_a_tool_error_and_bad_ones_send_nothing(
    fuzz_session: tuple[Any, Client, AlwaysFine], tool: str
) -> None:
    portal, client, upstream = fuzz_session

    outcomes = {"error": 0, "result": 0}

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @example(arguments=VALID[tool])
    @given(
        arguments=TOOL_ARGUMENTS[tool]
        | st.builds(lambda known, extra: {**extra, **known}, TOOL_ARGUMENTS[tool], extra_keys)
    )
    def check(arguments: dict[str, Any]) -> None:
        before = upstream.calls
        result = portal.call(client.call_tool, tool, arguments)
        text = " ".join(getattr(block, "text", "") for block in result.content)
        assert "Traceback" not in text
        assert API_KEY not in text
        outcomes["error" if result.is_error else "result"] += 1
        if result.is_error:
            assert text.strip(), "a tool error says what was wrong"
            assert upstream.calls == before, f"invalid input reached cutout.pro: {arguments!r} -> {text}"
        else:
            assert result.structured_content is not None

    check()
    assert outcomes["error"] > 0, "the fuzzer reached the argument checks"
    assert outcomes["result"] > 0, "and the success path"


# --- protocol garbage over stdio ----------------------------------------------------


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}},
}
GARBAGE = [
    b"this is not json\n",
    b"{\n",
    b"[]\n",
    b"[1, 2, 3]\n",
    b"null\n",
    b'{"jsonrpc": "2.0"}\n',
    b'{"jsonrpc": "1.0", "id": 5, "method": "tools/list"}\n',
    b"\xff\xfe\x00garbage\n",
    _line({"jsonrpc": "2.0", "id": 2, "method": "no/such/method"}),
    _line({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": "not an object"}),
    _line({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "generate_video", "arguments": 7}}),
    _line({"jsonrpc": "2.0", "id": {"nested": True}, "method": "tools/list"}),
    _line({"jsonrpc": "2.0", "method": "notifications/unknown"}),
    _line({"jsonrpc": "2.0", "id": 6, "method": "ping", "params": {"padding": "x" * 4_000_000}}),  # a huge message
]


@pytest.mark.anyio
async def test_protocol_garbage_over_stdio_leaves_the_server_answering(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOUT_")}
    env.update(CUTOUT_STATE_DIR=str(tmp_path / "state"), PYTHONUNBUFFERED="1")
    answers: dict[Any, dict[str, Any]] = {}
    stdout_lines: list[bytes] = []
    async with await anyio.open_process(
        [sys.executable, "-m", "cutout_mcp"], env=env, stderr=None, cwd=tmp_path
    ) as process:
        assert process.stdin is not None
        assert process.stdout is not None

        async def read_until(wanted: Any) -> None:
            buffer = b""
            while wanted not in answers:
                chunk = await process.stdout.receive()  # type: ignore[union-attr]
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    stdout_lines.append(line)
                    message = json.loads(line)  # stdout carries nothing but protocol messages
                    if isinstance(message, dict) and "id" in message:
                        answers[json.dumps(message["id"])] = message

        with anyio.fail_after(30):
            await process.stdin.send(_line(INITIALIZE))
            await read_until(json.dumps(1))
            await process.stdin.send(_line({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            for garbage in GARBAGE:
                await process.stdin.send(garbage)
            await process.stdin.send(_line({"jsonrpc": "2.0", "id": 99, "method": "tools/list"}))
            await read_until(json.dumps(99))
            call = {"name": "get_video_result", "arguments": {"id": 1}}
            await process.stdin.send(_line({"jsonrpc": "2.0", "id": 100, "method": "tools/call", "params": call}))
            await read_until(json.dumps(100))
        assert process.returncode is None, "the server is still running"
        process.terminate()

    tools = {t["name"] for t in answers[json.dumps(99)]["result"]["tools"]}
    assert tools >= {"generate_video", "get_video_result", "edit_image"}
    assert answers[json.dumps(2)]["error"]["code"] == -32601  # unknown method, answered as such
    keyless = answers[json.dumps(100)]["result"]
    assert keyless["isError"] is True
    assert "CUTOUT_API_KEY" in keyless["content"][0]["text"]
    assert all(b"Traceback" not in line for line in stdout_lines)
