"""Connections that do not ask for anything: bounded before they reach the app.

uvicorn's httptools protocol reads a request's head with no bound on its size and no time
limit, and keeps a connection that has not sent a request open for ever: 30 sockets
sending an unfinished 20 MB header took a web process from 126 to 805 MB, one client held
19,980 idle connections. `GuardedProtocol` (uvicorn's, with these bounds) answers:

- a head over `MAX_HEAD_BYTES`, or with more than `MAX_HEADERS` lines: `431`, closed;
- a request not read whole within `read_s` of the connection being ready for it (made, or
  done with the request before): closed (`408` when part of it came), whether nothing
  came, a header line every few seconds or a body a byte at a time;
- more than `per_client` connections from one address that are waiting for or reading
  a request: the next is closed at once. A connection whose request is being answered is
  not counted (an admitted stream, however long it lasts), nor are the trusted proxies'
  (they bring everyone).

Every connection being read is in one table swept once a second (no timer per
connection). It relies on uvicorn's internals (`data_received`, `on_header`,
`on_message_complete`, `on_response_complete`, `handle_websocket_upgrade`,
`send_400_response`); `pyproject.toml` bounds uvicorn to one minor version.

On upgrading uvicorn: read `httptools_impl.py`'s diff for those methods (what they are
called with, what they call), then `scripts/check --newest`, whose
`test_hostile_connections.py` holds every bound here.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024  # nginx's default is 4 × 8 KiB
MAX_HEADERS = 100
REFUSALS = {
    408: b"HTTP/1.1 408 Request Timeout\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
}


class HeadTooLarge(Exception):
    pass


class Guard:
    """The bounds, and the connections being read, of one process."""

    def __init__(self, read_s: float, per_client: int, exempt: set[str]) -> None:
        self.read_s = read_s
        self.per_client = per_client
        self.exempt = exempt  # addresses not counted ("*": none is)
        self.reading: dict[GuardedProtocol, float] = {}  # connection → its deadline
        self.by_client: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()  # why, for /metrics
        self._sweeping: asyncio.TimerHandle | None = None

    def counts(self, client: str) -> bool:
        return "*" not in self.exempt and client not in self.exempt

    def start_reading(self, connection: GuardedProtocol) -> bool:
        """The connection waits for a request; False when its address has too many."""
        client = connection.address
        if self.counts(client):
            if self.by_client[client] >= self.per_client:
                self.refused["connections"] += 1
                return False
            self.by_client[client] += 1
        loop = asyncio.get_running_loop()
        self.reading[connection] = loop.time() + self.read_s
        if self._sweeping is None:
            self._sweeping = loop.call_later(1, self._sweep)
        return True

    def stop_reading(self, connection: GuardedProtocol) -> None:
        if self.reading.pop(connection, None) is None:
            return
        client = connection.address
        if self.counts(client):
            self.by_client[client] -= 1
            if not self.by_client[client]:
                del self.by_client[client]

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        late = [c for c, deadline in self.reading.items() if deadline <= now]
        for connection in late:
            self.refused["slow"] += 1
            connection.refuse(408)
        self._sweeping = loop.call_later(1, self._sweep) if self.reading else None


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol within the `Guard`'s bounds (set on the subclass that
    `guarded()` makes)."""

    guard: Guard

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.address = ""
        self.head_bytes = 0  # of the request being read, while its head is not whole
        self.header_count = 0
        self.heard = False  # anything of the request being read has come
        self.refusing: int | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.address = self.client[0] if self.client else ""
        if not self.guard.start_reading(self):
            transport.abort()  # no answer: the address holds too many waiting already

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.stop_reading(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refusing is not None:
            return
        self.heard = True
        reading_head = self.head_bytes >= 0
        super().data_received(data)
        if reading_head and self.head_bytes >= 0 and self.refusing is None:
            self.head_bytes += len(data)  # the head is not whole yet
            if self.head_bytes > MAX_HEAD_BYTES:
                self.refuse(431)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        if self.header_count > MAX_HEADERS:
            self.refusing = 431
            raise HeadTooLarge  # httptools stops parsing: `send_400_response` answers
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.head_bytes = -1  # whole
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.guard.stop_reading(self)  # read whole: being answered, not counted
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self.heard, self.head_bytes, self.header_count = False, 0, 0
            if not self.guard.start_reading(self):  # ready for the next one (keep-alive)
                self.transport.close()

    def handle_websocket_upgrade(self) -> None:
        self.guard.stop_reading(self)  # the socket's own protocol takes it from here
        super().handle_websocket_upgrade()

    def send_400_response(self, msg: str) -> None:
        if self.refusing is not None:
            self.refuse(self.refusing)
        else:
            super().send_400_response(msg)

    def refuse(self, status: int) -> None:
        """Answer `status` (when anything of a request came) and close."""
        self.refusing = status
        self.guard.stop_reading(self)
        if status == 431:
            self.guard.refused["head"] += 1
        if self.transport.is_closing():
            return
        if self.heard:
            self.transport.write(
                REFUSALS[status] + b"content-length: 0\r\nconnection: close\r\n\r\n"
            )
        self.transport.close()


def guarded(read_s: float, per_client: int, exempt: set[str]) -> type[GuardedProtocol]:
    """The protocol class for uvicorn's `http=`, with one `Guard` for the process."""
    return type("Guarded", (GuardedProtocol,), {"guard": Guard(read_s, per_client, exempt)})
