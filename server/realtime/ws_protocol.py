"""uvicorn's websockets-sansio protocol, holding less for each open WebSocket.

For a connection's whole life uvicorn keeps the handshake's request and response (their
headers, ~4 KiB), an `asyncio.Queue` for the client's messages (three deques, ~2.3 KiB)
and an `asyncio.Event` for write flow control (~0.8 KiB). This subclass lets the first
two go once the handshake has been answered, and holds the others in a list and a flag
whose futures exist only while someone waits. It relies on uvicorn's internals (the
attributes named here: `request`, `response`, `queue`, `writable`, `handshake_complete`,
and what uvicorn calls on the queue and the flag); every WebSocket test runs through it,
and `pyproject.toml` bounds uvicorn to one minor version.

On upgrading uvicorn: read `websockets_sansio_impl.py`'s diff for those attributes and for
any new use of `queue` or `writable`; then `scripts/check --newest` (the streaming tests
on the newest versions the pins allow) and `python -m bench.matrix --only ws-10k` (the
memory per socket).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class _Messages:
    """The client's messages for the app: what uvicorn asks of its queue. Short: uvicorn
    stops reading the client until the app has taken its message."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:  # one reader: the app's `receive`
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items


class _Flag:
    """Whether the transport takes writes: `asyncio.Event`'s set/clear/wait, with no
    deque of waiters held while nobody waits."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await waiter


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Messages()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        answering = not self.handshake_complete
        await super().send(message)
        if answering and self.handshake_complete:  # the handshake is over: let it go
            self.request = self.response = None  # type: ignore[assignment]
