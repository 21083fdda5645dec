"""Calls of one Lua script made in the same turn of the loop, sent as one pipeline.

A reconnect storm opens thousands of streams in a few loop turns, each reading its task
once. One command each would take a pool connection, wait its turn for it and parse one
reply at a time; gathered, a turn's calls go out as one pipeline (at most `MAX_BATCH`
commands, on one connection) and each caller gets its own reply or its own error.

Scripts are run by their SHA (`EVALSHA`). A server that does not know the script (a new
server, a `SCRIPT FLUSH`) answers NOSCRIPT to each call of the batch; those are run again
one by one through redis-py's `Script`, which loads it. So are the calls a cluster's pipeline
answers with an error that means "wait" (a primary died, CLUSTERDOWN, TRYAGAIN: a cluster's
pipeline gives each command its error; one server's, READONLY or LOADING): alone, they get
the client's retries, all at once. One server's pipeline that fails as a whole has had the
client's retries already: every call gets its error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from jobs.infra.connections import is_outage

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
            replies, whole = await self._replies(calls)
            # whether a call that failed may be tried again by itself (see above)
            alone = not whole or isinstance(self.script.registered_client, RedisCluster)
            again = [
                i
                for i, answer in enumerate(replies)
                if alone and (isinstance(answer, NoScriptError) or is_outage(answer))
            ]
            if again:  # the first alone (it loads the script, or waits), then the rest
                replies[again[0]] = await self._alone(*calls[again[0]][:2])
                rest = again[1:]
                answers, _ = await self._replies([calls[i] for i in rest])
                for i, answer in zip(rest, answers, strict=True):
                    replies[i] = answer
            for (_, _, reply), answer in zip(calls, replies, strict=True):
                if reply.done():
                    continue
                if isinstance(answer, Exception):
                    reply.set_exception(answer)
                else:
                    reply.set_result(answer)
        finally:  # cancelled (the process stops): so are the calls still waiting
            for _, _, reply in calls:
                reply.cancel()

    async def _replies(self, calls: list[Call]) -> tuple[list[Any], bool]:
        """Each call's reply or error, and whether the pipeline failed as a whole (then
        every call has its error)."""
        try:
            return (await self._pipeline(calls) if calls else []), False
        except Exception as error:
            return [error] * len(calls), True

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
