"""Something a task waits on, with no future held while nobody waits.

A process holds one listener, one login watch and one WebSocket's queue and flow flag per
open stream: tens of thousands. An `asyncio.Event` each would hold a deque of waiters for
its whole life (~0.8 KiB). `Waitable` is a base with one slot: the future exists only
while someone waits, is shared by every waiter, and is dropped once it is set.

A subclass says when waiting is over (`_ready`) and calls `_notify()` when that may have
become true; `_until_ready()` returns at once if it is. With `shared`, several tasks may
wait at once, each one's cancel its own (shielded); otherwise one task waits at a time
and its cancel cancels the future (cheaper: no shield on a stream's every wait).
"""

from __future__ import annotations

import asyncio


class Waitable:
    __slots__ = ("_waiter",)
    shared = False  # several tasks may wait at once

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None

    def _ready(self) -> bool:
        raise NotImplementedError

    async def _until_ready(self) -> None:
        while not self._ready():
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await (asyncio.shield(waiter) if self.shared else waiter)
            finally:
                if waiter.done() and self._waiter is waiter:
                    self._waiter = None

    def _notify(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
