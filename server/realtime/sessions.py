"""Open streams by login, so that a revoked login's streams end at once.

Every stream watches the login (token family) it was opened with: a `Watch` bounds each
of the stream's waits by the token's expiry, and by a revocation. `revoke()` in
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
import time
from collections.abc import Iterator
from contextlib import contextmanager

from redis.asyncio import Redis

from server.realtime.hub import Hub

logger = logging.getLogger(__name__)

REVOCATIONS = "sessions"  # the hub's name for the channel revocations are announced on


def revoked_key(family: str) -> str:
    """Set (with the longest token's lifetime) once a login's tokens are revoked."""
    return f"ts:token-family:{family}:revoked"


class Watch:
    """One stream's login: when its token expires, and whether it has been revoked."""

    __slots__ = ("_sessions", "_timeouts", "_waiter", "deadline", "family", "revoked")

    def __init__(self, sessions: Sessions, family: str, expires_at: float) -> None:
        self._sessions: Sessions | None = sessions
        self.family = family
        self.deadline = asyncio.get_running_loop().time() + expires_at - time.time()
        self.revoked = False
        self._timeouts: set[asyncio.Timeout] = set()
        # made only while someone waits for the revocation (no `asyncio.Event` per stream)
        self._waiter: asyncio.Future[None] | None = None

    @contextmanager
    def bounding(self, timeout: asyncio.Timeout) -> Iterator[None]:
        """While in it, a revocation makes `timeout` fire at once."""
        if self.revoked:
            timeout.reschedule(asyncio.get_running_loop().time())
        self._timeouts.add(timeout)
        try:
            yield
        finally:
            self._timeouts.discard(timeout)

    async def until_revoked(self) -> None:
        """For one waiter at a time (a WebSocket with no subscription)."""
        if not self.revoked:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def revoke(self) -> None:
        self.revoked = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        now = asyncio.get_running_loop().time()
        for timeout in self._timeouts:
            timeout.reschedule(now)

    def close(self) -> None:
        """The stream has ended: stop watching (once)."""
        if self._sessions is not None:
            self._sessions.forget(self)
            self._sessions = None


class Sessions:
    """This process's open streams by login family."""

    def __init__(self) -> None:
        self._watches: dict[str, set[Watch]] = {}

    def open(self, family: str, expires_at: float) -> Watch:
        """Watch a stream's login (its token family, and its token's expiry, epoch s)."""
        watch = Watch(self, family, expires_at)
        self._watches.setdefault(watch.family, set()).add(watch)
        return watch

    def forget(self, watch: Watch) -> None:
        watches = self._watches.get(watch.family)
        if watches is not None:
            watches.discard(watch)
            if not watches:
                del self._watches[watch.family]

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
                pipe.exists(revoked_key(family))
            revoked = await pipe.execute()
        for family, gone in zip(families, revoked, strict=True):
            if gone:
                self.revoke(family)
