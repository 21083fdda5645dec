"""Every HTTP request starts its answer within a bound, or is answered 503.

A request waits on Redis, and a Redis that is stopped rather than gone (SIGSTOP, a frozen
VM, a network that drops packets) answers nothing: without a bound the request would hang
as long. Once the answer has started the bound is lifted: a stream's or a download's body
takes as long as it takes. A pure ASGI middleware with no timer per request: requests
waiting for their answer are kept by start time, and one sweep a second cancels those
past the bound (redis-py drops a connection whose command was cancelled). With a timer
(`asyncio.timeout`) per request a storm of 5,000 stream opens cost 0.302 ms of CPU each;
without any bound 0.255, with the sweep 0.264 (`python -m bench.storm --streams 5000
--cpus --repeat 2`). WebSocket handshakes are not bounded here.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import error_response

logger = logging.getLogger(__name__)

SWEEP_S = 1.0


class AnswerDeadline:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        # requests not answered yet: their task → when they began (dicts keep that order)
        self._waiting: dict[asyncio.Task[object], float] = {}
        self._cut: set[asyncio.Task[object]] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        me = asyncio.current_task()
        assert me is not None
        waiting = self._waiting
        waiting[me] = time.monotonic()
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep)

        started = False

        async def answering(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                waiting.pop(me, None)  # answered: no bound on the body
            await send(message)

        try:
            await self.app(scope, receive, answering)
        except asyncio.CancelledError:
            if me not in self._cut:
                raise
            self._cut.discard(me)
            if started:  # cut as it began to answer: too late to answer otherwise
                raise
            me.uncancel()
            logger.warning("no answer in %g s", self.seconds, extra={"path": scope["path"]})
            message = "the server could not answer in time (is Redis reachable?); try again"
            answer = error_response(503, "UNAVAILABLE", message, headers={"Retry-After": "2"})
            await answer(scope, receive, send)
        finally:
            waiting.pop(me, None)
            self._cut.discard(me)

    def _sweep(self) -> None:
        """Cancel every request waiting longer than the bound; again in a second while any
        are waiting."""
        self._sweeper = None
        oldest = time.monotonic() - self.seconds
        for task, began in list(self._waiting.items()):
            if began > oldest:
                break  # the rest began later
            del self._waiting[task]
            self._cut.add(task)
            task.cancel()
        if self._waiting:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep)
