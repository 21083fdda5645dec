"""Streams run outside Starlette's middleware and routing, once answered.

A stream lives for minutes or hours. Run where Starlette calls it, it would hold the
frames and closures of its request's way through the middleware stack and the router
(a dozen, ~4 KiB) as long. So a stream does its start inside the stack (an SSE answer's
start message, to which the security headers are added; a WebSocket's accept) and then
hands the rest over: `with_handover`, which the app wraps around Starlette, runs it once
the stack has returned, on the server's own `receive` and `send`.
"""

from __future__ import annotations

from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

HANDOVER = "taskstream.handover"  # scope key: what to run after the stack has returned


class Handed(Protocol):
    async def run(self, receive: Receive, send: Send) -> None:
        """The rest of the stream, until it ends."""

    async def release(self) -> None:
        """Never run: give back what it holds."""


def hand_over(scope: Scope, handed: Handed) -> bool:
    """Leave `handed` to run after the stack; False when the app does not run handovers
    (then the caller runs it itself)."""
    later: list[Handed] | None = scope.get(HANDOVER)
    if later is None:
        return False
    later.append(handed)
    return True


async def with_handover(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run `app`, then what it handed over."""
    if scope["type"] not in ("http", "websocket"):
        await app(scope, receive, send)
        return
    later: list[Handed] = []
    scope[HANDOVER] = later
    try:
        await app(scope, receive, send)
    except BaseException:
        for handed in later:
            await handed.release()
        raise
    for handed in later:
        await handed.run(receive, send)
