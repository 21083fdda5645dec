"""Calls of one Lua script made in the same turn of the loop, sent as one pipeline.

A reconnect storm opens thousands of streams in a few loop turns, each reading its task
once. One command each would take a pool connection, wait its turn for it and parse one
reply at a time; gathered, a turn's calls go out as one pipeline (at most `MAX_BATCH`
commands, on one connection) and each caller gets its own reply or its own error.

Scripts are run by their SHA (`EVALSHA`). A server that does not know the script (a new
server, a `SCRIPT FLUSH`) answers NOSCRIPT to each call of the batch; those are run again
one by one through redis-py's `Script`, which loads it. So are the calls a cluster's pipeline
answers with a connection error (a primary died: one server's pipeline retries as a whole,
a cluster's gives each command its error): alone, they get the client's retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError, NoScriptError, TimeoutError

MAX_BATCH = 500

Call = tuple[Sequence[str], Sequence[str], "asyncio.Future[Any]"]


class Batched:
    """`await batched(keys, args)`: `script(keys, args)`, in a pipeline with the other calls
    of the same loop turn."""

    def __init__(self, script: AsyncScript) -> None:
        self.script = script
        self._calls: list[Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def __call__(self, keys: Sequence[str], args: Sequence[str]) -> Any:
        loop = asyncio.get_running_loop()
        if not self._calls:
            loop.call_soon(self._flush)
        reply: asyncio.Future[Any] = loop.create_future()
        self._calls.append((keys, args, reply))
        return await reply

    def _flush(self) -> None:
        calls, self._calls = self._calls, []
        for start in range(0, len(calls), MAX_BATCH):
            task = asyncio.create_task(self._send(calls[start : start + MAX_BATCH]))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, calls: list[Call]) -> None:
        calls = [call for call in calls if not call[2].done()]  # callers gone meanwhile
        try:
            try:
                replies = await self._pipeline(calls)
            except Exception as error:  # the connection: every call of the batch failed
                replies = [error] * len(calls)
            for (keys, args, reply), answer in zip(calls, replies, strict=True):
                if isinstance(answer, NoScriptError | ConnectionError | TimeoutError):
                    answer = await self._alone(keys, args)
                if reply.done():
                    continue
                if isinstance(answer, Exception):
                    reply.set_exception(answer)
                else:
                    reply.set_result(answer)
        finally:  # cancelled (the process stops): so are the calls still waiting
            for _, _, reply in calls:
                reply.cancel()

    async def _pipeline(self, calls: list[Call]) -> list[Any]:
        async with self.script.registered_client.pipeline(transaction=False) as pipe:
            for keys, args, _ in calls:
                # not `pipe.evalsha`, which a cluster's pipeline refuses by name
                pipe.execute_command("EVALSHA", self.script.sha, len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            return replies

    async def _alone(self, keys: Sequence[str], args: Sequence[str]) -> Any:
        try:
            return await self.script(keys, args)
        except Exception as error:
            return error
