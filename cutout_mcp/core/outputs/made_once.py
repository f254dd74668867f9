"""Work worth doing once per key: the first caller does it, concurrent callers share it, later ones reuse it.

A finished video's contact sheet costs a download of the video and tens of milliseconds of decoding,
and it never changes. Every reader of the job (500 waiters on one job, or an assistant reading the
same result again) would otherwise pay that again. `MadeOnce` keeps the last few results in memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import anyio

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class MadeOnce(Generic[K, V]):
    """The results of `make()` for the `size` most recently used keys; a failure is never kept."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._made: OrderedDict[K, V] = OrderedDict()
        self._making: dict[K, anyio.Event] = {}

    async def get(self, key: K, make: Callable[[], Awaitable[V]]) -> V | None:
        """The value for `key`, made by this call if nobody has it; None when a concurrent attempt failed.

        The caller that makes it sees its exception. A caller that waited on that attempt gets None,
        not a second attempt: when one failed, the others would most likely fail the same way. The
        next call after that tries again.
        """
        if key in self._made:
            self._made.move_to_end(key)
            return self._made[key]
        making = self._making.get(key)
        if making is not None:
            await making.wait()
            return self._made.get(key)
        done = self._making[key] = anyio.Event()
        try:
            value = await make()
            self._made[key] = value
            if len(self._made) > self._size:
                self._made.popitem(last=False)
            return value
        finally:
            del self._making[key]
            done.set()
