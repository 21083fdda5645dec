"""Every HTTP request starts its answer within a bound, or is answered 503.

A request waits on Redis, and a Redis that is stopped rather than gone (SIGSTOP, a frozen
VM, a network that drops packets) answers nothing: without a bound the request would hang
as long. Once the answer has started the bound is lifted: a stream's or a download's body
takes as long as it takes. A pure ASGI middleware, and no task of its own: the request's
own task is cancelled at the bound (redis-py drops a connection whose command was
cancelled). WebSocket handshakes are not bounded here.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import error_response

logger = logging.getLogger(__name__)


class AnswerDeadline:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.timeout(self.seconds)

        async def answering(message: Message) -> None:
            if message["type"] == "http.response.start":
                deadline.reschedule(None)  # answered: no bound on the body
            await send(message)

        try:
            async with deadline:
                await self.app(scope, receive, answering)
        except TimeoutError:
            if not deadline.expired():
                raise
            logger.warning("no answer in %g s", self.seconds, extra={"path": scope["path"]})
            message = "the server could not answer in time (is Redis reachable?); try again"
            retry = {"Retry-After": "2"}
            await error_response(503, "UNAVAILABLE", message, headers=retry)(scope, receive, send)
