"""`Waitable`, the one-slot wait that every stream's listener, login watch and WebSocket
queue and flag are built on: woken when ready, no future held while nobody waits."""

from __future__ import annotations

import asyncio

import pytest

from server.realtime.waitable import Waitable


class Flag(Waitable):
    __slots__ = ("up",)

    def __init__(self) -> None:
        super().__init__()
        self.up = False

    def raise_(self) -> None:
        self.up = True
        self._notify()

    def _ready(self) -> bool:
        return self.up


class SharedFlag(Flag):
    __slots__ = ()
    shared = True


async def test_a_waiter_is_woken_when_ready_and_nothing_is_held_after():
    flag = Flag()
    waiting = asyncio.create_task(flag._until_ready())
    await asyncio.sleep(0)
    assert not waiting.done() and flag._waiter is not None
    flag.raise_()
    await waiting
    assert flag._waiter is None
    await flag._until_ready()  # ready already: at once, no future made
    assert flag._waiter is None


async def test_a_notice_while_not_ready_keeps_the_waiter_waiting():
    flag = Flag()
    waiting = asyncio.create_task(flag._until_ready())
    await asyncio.sleep(0)
    flag._notify()  # something happened, but not what it waits for
    await asyncio.sleep(0)
    assert not waiting.done()
    flag.raise_()
    await waiting


async def test_a_cancelled_waiter_leaves_no_future_behind():
    flag = Flag()
    waiting = asyncio.create_task(flag._until_ready())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert flag._waiter is None


async def test_shared_waiters_are_all_woken_and_one_cancel_is_its_own():
    flag = SharedFlag()
    waiters = [asyncio.create_task(flag._until_ready()) for _ in range(3)]
    await asyncio.sleep(0)
    waiters[0].cancel()
    await asyncio.sleep(0)
    assert waiters[0].cancelled() and not waiters[1].done() and not waiters[2].done()
    flag.raise_()
    await asyncio.gather(*waiters[1:])
    assert flag._waiter is None


def test_it_costs_one_slot_and_no_dict():
    assert not hasattr(Flag(), "__dict__")
    assert Waitable.__slots__ == ("_waiter",)
