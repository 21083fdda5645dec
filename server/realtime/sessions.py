"""Open streams by login, so that a revoked login's streams end at once.

Every stream watches the login (token family) it was opened with: a `Watch` bounds each
of the stream's waits by the token's expiry, and by a revocation, with no timer per
stream (one per second in which a watched token expires). `revoke()` in
`server/auth.py` publishes the family on one channel that every web process's hub
follows for its whole life (one channel for all logins: opening a stream costs no extra
subscription); `Sessions` then ends the waits of that login's streams here, so a logout,
a password reset or a stolen refresh token ends them within a round trip, wherever they
are. When the hub reconnects, revocations may have been missed: every open login is
checked in Redis again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis.asyncio import Redis

from jobs.infra import keys
from server.realtime.hub import Hub
from server.realtime.waitable import Waitable

logger = logging.getLogger(__name__)

REVOCATIONS = "sessions"  # the hub's name for the channel revocations are announced on


class Watch(Waitable):
    """One stream's login: when its token expires, and whether it has been revoked.

    No timer of its own: `Sessions` keeps one timer per second in which watched tokens
    expire, so a stream learns of its token's expiry within a second of it."""

    __slots__ = ("_bounded", "_sessions", "deadline", "expired", "family", "revoked")

    def __init__(self, sessions: Sessions, family: str, expires_at: float) -> None:
        super().__init__()  # a `Waitable`: no `asyncio.Event` per stream
        self._sessions: Sessions | None = sessions
        self.family = family
        self.deadline = asyncio.get_running_loop().time() + expires_at - time.time()
        self.revoked = False
        self.expired = False
        # the tasks interrupted when the login ends, with whether they have been
        self._bounded: dict[asyncio.Task[Any], bool] = {}

    @property
    def ended(self) -> bool:
        return self.revoked or self.expired

    @contextmanager
    def bounding(self) -> Iterator[None]:
        """While in it, the login's end (expiry or revocation) interrupts the task with
        `TimeoutError`, as `asyncio.timeout` would. Entered while the login lasts: the
        caller checks `ended` first (`follow._before`)."""
        task = asyncio.current_task()
        assert task is not None
        self._bounded[task] = False
        try:
            yield
        except asyncio.CancelledError:
            if self._bounded.get(task) and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            self._bounded.pop(task, None)

    async def until_ended(self) -> None:
        """For one waiter at a time (a WebSocket with no subscription)."""
        await self._until_ready()

    def _ready(self) -> bool:
        return self.ended

    def revoke(self) -> None:
        self.revoked = True
        self._end()

    def expire(self) -> None:
        self.expired = True
        self._end()

    def _end(self) -> None:
        self._notify()
        for task, interrupted in self._bounded.items():
            if not interrupted:
                self._bounded[task] = True
                task.cancel()

    def close(self) -> None:
        """The stream has ended: stop watching (once)."""
        if self._sessions is not None:
            self._sessions.forget(self)
            self._sessions = None


class Sessions:
    """This process's open streams by login family, and by the second their token expires."""

    def __init__(self) -> None:
        self._watches: dict[str, set[Watch]] = {}
        self._expiring: dict[int, set[Watch]] = {}

    def open(self, family: str, expires_at: float) -> Watch:
        """Watch a stream's login (its token family, and its token's expiry, epoch s)."""
        watch = Watch(self, family, expires_at)
        self._watches.setdefault(watch.family, set()).add(watch)
        second = math.ceil(watch.deadline)
        if second not in self._expiring:
            self._expiring[second] = set()
            asyncio.get_running_loop().call_at(second, self._expire, second)
        self._expiring[second].add(watch)
        return watch

    def forget(self, watch: Watch) -> None:
        watches = self._watches.get(watch.family)
        if watches is not None:
            watches.discard(watch)
            if not watches:
                del self._watches[watch.family]
        expiring = self._expiring.get(math.ceil(watch.deadline))
        if expiring is not None:
            expiring.discard(watch)  # (the second's timer finds one fewer)

    def _expire(self, second: int) -> None:
        for watch in self._expiring.pop(second, ()):
            watch.expire()

    def revoke(self, family: str) -> None:
        for watch in list(self._watches.get(family, ())):
            watch.revoke()

    async def follow_revocations(self, hub: Hub, redis: Redis) -> None:
        """Run for the process's life: end the streams of every login revoked anywhere."""
        while not hub.closing:
            try:
                async with hub.listen(REVOCATIONS) as listener:
                    await self._recheck(redis)  # revoked before we were listening
                    while not listener.closing:
                        await listener.wait()
                        if listener.stale:
                            listener.stale = False
                            await self._recheck(redis)
                        for event in listener.queue:
                            self.revoke(event.data)
                        listener.queue.clear()
            except Exception:
                logger.warning("following revocations failed; again in 1 s", exc_info=True)
                await asyncio.sleep(1)

    async def _recheck(self, redis: Redis) -> None:
        families = list(self._watches)
        if not families:
            return
        async with redis.pipeline(transaction=False) as pipe:
            for family in families:
                pipe.exists(keys.revoked(family))
            revoked = await pipe.execute()
        for family, gone in zip(families, revoked, strict=True):
            if gone:
                self.revoke(family)
