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

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from server.realtime.waitable import Waitable


class _Messages(Waitable):
    """The client's messages for the app: what uvicorn asks of its queue. Short: uvicorn
    stops reading the client until the app has taken its message."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        super().__init__()
        self._items: list[Any] = []

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._notify()

    async def get(self) -> Any:
        await self._until_ready()  # one reader: the app's `receive`
        return self._items.pop(0)

    def _ready(self) -> bool:
        return bool(self._items)

    def empty(self) -> bool:
        return not self._items


class _Flag(Waitable):
    """Whether the transport takes writes: `asyncio.Event`'s set/clear/wait, with no
    deque of waiters held while nobody waits."""

    __slots__ = ("_set",)
    shared = True  # every writer waits for the transport

    def __init__(self) -> None:
        super().__init__()
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        self._notify()

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        await self._until_ready()

    def _ready(self) -> bool:
        return self._set


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
