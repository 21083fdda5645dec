"""One timer for the heartbeats of every open SSE stream.

A stream that has sent nothing for a while gets a `: ping` comment, so that proxies and
browsers keep it open. One timer ticks for all of them every `every_s` (none per
stream): at each tick, every stream that sent nothing since the last one is pinged, so a
quiet stream hears from us at least once every two heartbeats.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol


class Beating(Protocol):
    quiet: bool  # nothing sent since the last tick

    def ping(self) -> Coroutine[Any, Any, None]: ...


class Heartbeat:
    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._streams: set[Beating] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._pings: set[asyncio.Task[None]] = set()

    def add(self, stream: Beating) -> None:
        self._streams.add(stream)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.every_s, self._tick)

    def discard(self, stream: Beating) -> None:
        self._streams.discard(stream)

    def _tick(self) -> None:
        self._timer = None
        for stream in self._streams:
            if stream.quiet:
                ping = asyncio.create_task(stream.ping())
                self._pings.add(ping)
                ping.add_done_callback(self._pings.discard)
            stream.quiet = True
        if self._streams:
            self._timer = asyncio.get_running_loop().call_later(self.every_s, self._tick)
