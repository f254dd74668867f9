"""The clients: what an assistant does, drawn from a seeded `random.Random` per client.

Identical `generate_video` calls (one image content per prompt, passed as a URL, a local path, a data:
URI or an upload) from different clients and replicas, new videos, edits, `get_video_result` and
`list_video_jobs` of the caller's jobs, and task-augmented calls. Every call is recorded as an `Op`."""

from __future__ import annotations

import base64
import io
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client

from bench.soaklib.connect import connect
from bench.soaklib.history import Op
from bench.soaklib.policy import LEGACY_CLIENTS
from cutout_mcp.server.tasks.wire import CreateTaskResult

CALL_SECONDS = 45.0
"""Bound on one tool call (waits are at most 3 s, a hung upstream answer trips the HTTP timeout)."""
MIX: dict[str, int] = {
    "identical": 24,
    "burst": 8,
    "new": 14,
    "force": 3,
    "edit": 12,
    "result": 22,
    "list": 10,
    "task": 7,
}
SESSION_CALLS = (4, 12)
"""How many calls a legacy client makes in one session, drawn from this range."""
EDIT_MODELS = ("gpt-image-1", "gemini-2.5-flash-image", "qwen-image-edit-plus")
PICTURES = {"red": (200, 40, 40), "blue": (40, 60, 200)}


def make_pictures(folder: Path) -> dict[str, bytes]:
    """Two JPEGs in the input folder (one content each), returned by name."""
    from PIL import Image

    made = {}
    for name, color in PICTURES.items():
        out = io.BytesIO()
        Image.new("RGB", (640, 480), color).save(out, format="JPEG", quality=80)
        (folder / f"{name}.jpg").write_bytes(out.getvalue())
        made[name] = out.getvalue()
    return made


@dataclass
class Shared:
    """What all clients share: the record of calls, each caller's known job ids, the images."""

    ports: list[int]
    sample_url: str
    pictures: Path
    picture_bytes: dict[str, bytes]
    ops: list[Op] = field(default_factory=list)
    jobs: dict[str, list[int]] = field(default_factory=dict)

    def new_op(self, client: str, principal: str, tool: str, kind: str, **fields: Any) -> Op:
        op = Op(len(self.ops), client, principal, tool, kind, time.time(), **fields)
        self.ops.append(op)
        return op


class Caller:
    """One client: a principal, a seeded generator, and a connection it reopens after a transport error."""

    def __init__(self, shared: Shared, name: str, principal: str, rng: random.Random, *, legacy: bool = False) -> None:
        self.shared, self.name, self.principal, self.rng = shared, name, principal, rng
        self.legacy = legacy
        """Speaks 2025-11-25: one session per connection, a new one every few calls (`SESSION_CALLS`)."""
        self.client: Client | None = None

    async def image(self, content: str) -> str:
        """`content` ("sample", "red", "blue") by a route drawn at random."""
        if content == "sample":
            return self.shared.sample_url
        route = self.rng.choice(["path", "data", "upload"])
        data = self.shared.picture_bytes[content]
        if route == "path":
            return str(self.shared.pictures / f"{content}.jpg")
        if route == "data":
            return "data:image/jpeg;base64," + base64.b64encode(data).decode()
        assert self.client is not None
        ticket = await self.client.call_tool(
            "get_upload_url", {"filename": f"{content}.jpg", "content_type": "image/jpeg"}
        )
        sc = ticket.structured_content or {}
        if ticket.is_error or "upload_url" not in sc:
            return str(self.shared.pictures / f"{content}.jpg")
        async with httpx.AsyncClient(timeout=10) as http:
            put = await http.put(sc["upload_url"], content=data, headers=sc.get("headers") or {})
        return str(sc["image_url"]) if put.status_code < 300 else str(self.shared.pictures / f"{content}.jpg")

    async def run(self, deadline: float) -> None:
        """Calls until `deadline`; a call that breaks the connection (its replica died) opens a new one."""
        while time.time() < deadline:
            first = self.rng.randrange(len(self.shared.ports)) if self.legacy else 0
            try:
                with anyio.fail_after(max(1.0, deadline - time.time()) + CALL_SECONDS + 15):
                    async with connect(self.shared.ports, self.principal, legacy=self.legacy, first=first) as client:
                        self.client = client
                        await self.calls(deadline)
            except Exception:  # recorded in the op; the connection may be gone with its replica
                await anyio.sleep(0.5)
            finally:
                self.client = None

    async def calls(self, deadline: float) -> None:
        """Calls until `deadline`; a legacy client ends its session (its connection) after a few calls."""
        kinds, weights = list(MIX), list(MIX.values())
        left = self.rng.randint(*SESSION_CALLS) if self.legacy else -1
        while time.time() < deadline and left != 0:
            await self.one(self.rng.choices(kinds, weights)[0])
            await anyio.sleep(self.rng.uniform(0.1, 0.6))
            left -= 1

    async def one(self, kind: str) -> None:
        p, rng = self.principal, self.rng
        if kind in ("identical", "burst"):
            content = rng.choice(["sample", "red", "blue"])
            prompt = f"{p}: same {content}"
            calls = 3 if kind == "burst" else 1
            async with anyio.create_task_group() as tg:
                for _ in range(calls):
                    image = await self.image(content)
                    args = {"image_url": image, "prompt": prompt, "wait_seconds": 0}
                    tg.start_soon(self.call, "generate_video", kind, args, prompt, content)
        elif kind == "force":
            args = {"image_url": self.shared.sample_url, "prompt": f"{p}: forced", "wait_seconds": 0, "force_new": True}
            await self.call("generate_video", kind, args, args["prompt"], "sample")
        elif kind == "new":
            content = rng.choice(["sample", "red", "blue"])
            prompt = f"{p}: new {len(self.shared.ops)}" + (" sandbox:job-fails" if rng.random() < 0.1 else "")
            args = {"image_url": await self.image(content), "prompt": prompt, "wait_seconds": rng.choice([0, 0, 2])}
            await self.call("generate_video", kind, args, prompt, content)
        elif kind == "edit":
            content = rng.choice(["sample", "red", "blue"])
            prompt = f"{p}: edit {len(self.shared.ops)}"
            args = {"prompt": prompt, "image_urls": [await self.image(content)], "model": rng.choice(EDIT_MODELS)}
            await self.call("edit_image", kind, args, prompt, content)
        elif kind == "result":
            known = self.shared.jobs.get(p) or []
            if known:
                args = {"id": rng.choice(known), "wait_seconds": rng.choice([0, 0, 3])}
                await self.call("get_video_result", kind, args, None, None)
        elif kind == "list":
            await self.call("list_video_jobs", kind, {}, None, None)
        else:
            await self.task()

    async def call(self, tool: str, kind: str, args: dict[str, Any], prompt: str | None, image: str | None) -> None:
        op = self.shared.new_op(
            self.name,
            self.principal,
            tool,
            kind,
            prompt=prompt,
            image=None if image is None else f"{image}/{route_of(args)}",
            force_new=bool(args.get("force_new")),
            upload=upload_of(args),
        )
        assert self.client is not None
        try:
            with anyio.fail_after(CALL_SECONDS):
                result = await self.client.call_tool(tool, args)
        except BaseException as exc:
            op.end, op.outcome, op.text = time.time(), "exception", f"{type(exc).__name__}: {exc}"[:300]
            raise
        op.end = time.time()
        op.outcome = "tool_error" if result.is_error else "ok"
        op.text = " ".join(getattr(c, "text", "") for c in result.content)[:400]
        sc = result.structured_content or {}
        if tool in ("generate_video", "get_video_result") and isinstance(sc.get("id"), int):
            op.job_id, op.status = sc["id"], sc.get("status")
            op.credits_charged = sc.get("credits_charged")
            known = self.shared.jobs.setdefault(self.principal, [])
            if not result.is_error and op.job_id not in known:
                known.append(op.job_id)
        elif tool == "edit_image":
            op.credits_charged = sc.get("credits_charged")

    async def task(self) -> None:
        prompt = f"{self.principal}: task {len(self.shared.ops)}"
        op = self.shared.new_op(self.name, self.principal, "generate_video", "task", prompt=prompt, image="sample")
        assert self.client is not None
        args = {"image_url": self.shared.sample_url, "prompt": prompt}
        try:
            with anyio.fail_after(CALL_SECONDS):
                handle = await self.client.session.call_tool("generate_video", args, allow_claimed=True)
        except BaseException as exc:
            op.end, op.outcome, op.text = time.time(), "exception", f"{type(exc).__name__}: {exc}"[:300]
            raise
        op.end = time.time()
        if isinstance(handle, CreateTaskResult):
            op.outcome, op.task_id = "ok", handle.task_id
        else:
            op.outcome = "tool_error" if getattr(handle, "is_error", False) else "ok"
            op.text = str(handle)[:400]


def upload_of(args: dict[str, Any]) -> str | None:
    value = str(args.get("image_url") or (args.get("image_urls") or [""])[0])
    return value.removeprefix("upload:") if value.startswith("upload:") else None


def route_of(args: dict[str, Any]) -> str:
    """How the image was passed: url, path, data or upload (for reading a history)."""
    value = str(args.get("image_url") or (args.get("image_urls") or [""])[0])
    for prefix, route in (("upload:", "upload"), ("data:", "data"), ("http", "url")):
        if value.startswith(prefix):
            return route
    return "path"


async def run_clients(shared: Shared, seed: int, per_principal: int, deadline: float) -> None:
    """Two (or `per_principal`) clients for each principal, each with its own generator from the seed;
    those in `LEGACY_CLIENTS` speak 2025-11-25."""
    async with anyio.create_task_group() as tg:
        for principal in ("alice", "bob", "carol"):
            for n in range(per_principal):
                name = f"{principal}{n}"
                caller = Caller(shared, name, principal, random.Random(f"{seed}:{name}"), legacy=name in LEGACY_CLIENTS)
                tg.start_soon(caller.run, deadline)
