"""`MadeOnce`: what is worth doing once per key is done once, shared while it runs, and kept a while."""

from __future__ import annotations

import anyio
import pytest

from cutout_mcp.core.outputs.made_once import MadeOnce

pytestmark = pytest.mark.anyio


class Maker:
    """A `make()` that counts its calls and finishes only when the test lets it."""

    def __init__(self, value: str = "sheet") -> None:
        self.value = value
        self.calls = 0
        self.started = anyio.Event()
        self.release = anyio.Event()
        self.error: Exception | None = None

    async def __call__(self) -> str:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.value


async def test_concurrent_callers_share_one_making() -> None:
    made: MadeOnce[int, str] = MadeOnce(4)
    maker = Maker()
    got: list[str | None] = []

    async def read() -> None:
        got.append(await made.get(7, maker))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(read)
        await maker.started.wait()
        await anyio.wait_all_tasks_blocked()
        maker.release.set()
    assert got == ["sheet"] * 5
    assert maker.calls == 1


async def test_a_later_caller_gets_the_kept_value_without_making_it() -> None:
    made: MadeOnce[int, str] = MadeOnce(4)
    first = Maker("first")
    first.release.set()
    assert await made.get(7, first) == "first"
    again = Maker("second")
    again.release.set()
    assert await made.get(7, again) == "first"
    assert again.calls == 0


async def test_the_maker_sees_its_failure_the_waiters_get_none_and_the_next_call_tries_again() -> None:
    made: MadeOnce[int, str] = MadeOnce(4)
    maker = Maker()
    maker.error = OSError("the video could not be read")
    waited: list[str | None] = []

    async def make_it() -> None:
        with pytest.raises(OSError, match="could not be read"):
            await made.get(7, maker)

    async def wait_for_it() -> None:
        waited.append(await made.get(7, maker))

    async with anyio.create_task_group() as tg:
        tg.start_soon(make_it)
        await maker.started.wait()
        tg.start_soon(wait_for_it)
        await anyio.wait_all_tasks_blocked()
        maker.release.set()
    assert waited == [None]
    assert maker.calls == 1

    retry = Maker("sheet")
    retry.release.set()
    assert await made.get(7, retry) == "sheet"  # a failure is never kept
    assert retry.calls == 1


async def test_a_cancelled_making_keeps_nothing_and_frees_its_waiters() -> None:
    made: MadeOnce[int, str] = MadeOnce(4)
    maker = Maker()
    waited: list[str | None] = []

    async def wait_for_it() -> None:
        waited.append(await made.get(7, maker))

    async with anyio.create_task_group() as tg:
        making = anyio.CancelScope()

        async def make_it() -> None:
            with making:
                await made.get(7, maker)

        tg.start_soon(make_it)
        await maker.started.wait()
        tg.start_soon(wait_for_it)
        await anyio.wait_all_tasks_blocked()
        making.cancel()  # the caller gave up (its budget ran out, or its client went away)
    assert waited == [None]
    assert maker.calls == 1
    retry = Maker("sheet")
    retry.release.set()
    assert await made.get(7, retry) == "sheet"


async def test_only_the_most_recently_used_keys_are_kept() -> None:
    made: MadeOnce[int, str] = MadeOnce(2)

    async def value(key: int) -> str | None:
        maker = Maker(f"v{key}")
        maker.release.set()
        return await made.get(key, maker)

    await value(1)
    await value(2)
    await value(1)  # 1 is now the most recent, so 2 goes first
    await value(3)

    async def never() -> str:
        raise AssertionError("a kept value was made again")

    assert await made.get(1, never) == "v1"
    assert await made.get(3, never) == "v3"
    probe = Maker("new")
    probe.release.set()
    assert await made.get(2, probe) == "new"
    assert probe.calls == 1
