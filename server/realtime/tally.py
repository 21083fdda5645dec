"""Each user's open streams, counted across every web process (of every node).

`TASKSTREAM_MAX_STREAMS_PER_USER` holds for the user, not per process. Each user has a
hash on `REDIS_URL`, web process → its streams of the user, and each process a lease in
a sorted set of live processes (expiry in the server's milliseconds), renewed every
`RENEW_S`. Admitting a stream is one script: sum the counts of the processes whose
lease holds (dropping those of dead ones), refuse at the limit, else count one more, so
a burst of opens across processes admits exactly the limit. A process killed without a
word holds its users' places only until its lease lapses: `LEASE_S`.

Places given back as streams end (from synchronous code) are gathered and sent together
in the background, one pipeline for all the users whose streams ended meanwhile (15,000
streams closing at once are a few round trips, not 15,000 tasks); should that fail (an
outage) those users' counts are written whole again at the next renewal. A process whose
own lease lapsed (its loop held up for seconds) may have had its counts dropped by
others: it writes them all again.

The keys carry the hash tag `{streams}`: the claim reads the set of processes beside a
user's hash, which would then share a slot were `REDIS_URL` ever a cluster.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from contextlib import suppress

from redis.asyncio import Redis

from jobs.infra import keys, metrics

logger = logging.getLogger(__name__)

LEASE_S = 5.0
RENEW_S = 1.5
KEPT_S = 86_400  # a user's hash outlives their last admission by a day at most


# KEYS: the live processes, the user's counts. ARGV: this process, the limit, KEPT_S.
# Sum the counts of the processes whose lease holds, forget the others'; below the
# limit, count one more for this process: 1, else 0; -1 if this process's lease lapsed
# (others may have forgotten its counts: it renews and writes them first).
_CLAIM = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local own = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not own or own <= now then return -1 end
local counts = redis.call('HGETALL', KEYS[2])
local open = 0
for i = 1, #counts, 2 do
  local lease = tonumber(redis.call('ZSCORE', KEYS[1], counts[i]))
  if lease and lease > now then
    open = open + math.max(0, tonumber(counts[i + 1]))
  else
    redis.call('HDEL', KEYS[2], counts[i])
  end
end
if open >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""

# KEYS: the live processes. ARGV: this process, LEASE_S in ms. Forget lapsed processes,
# extend this one's lease; 1 when this one's had lapsed (or was never taken).
_RENEW = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local lease = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if lease and lease > now then return 0 end
return 1
"""


class StreamTally:
    """This process's side of the users' counts: `claim` before a stream is served,
    `release` when it ends; `start` takes the process's lease, `stop` gives it back."""

    def __init__(self, redis: Redis, per_user: int) -> None:
        self.redis = redis
        self.per_user = per_user
        # host:pid and a nonce: a pid reused after a restart is another process
        self.name = f"{metrics.process_name()}:{secrets.token_hex(4)}"
        self.held: Counter[str] = Counter()  # users' places this process counted in Redis
        self._dirty: set[str] = set()  # users whose count in Redis may be wrong
        self._released: Counter[str] = Counter()  # places given back, not yet sent
        self._sending: asyncio.Task[None] | None = None
        self._renewing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Take the lease before the first stream (in an outage, the first claim does)."""
        with suppress(Exception):
            await self._renew()
        self._renewing = asyncio.create_task(self._keep())

    async def stop(self) -> None:
        """Send what is left and give the lease back (in an outage, it lapses by itself)."""
        for task in (self._renewing, self._sending):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        with suppress(Exception):
            await self._send()
            await self.redis.zrem(keys.STREAM_PROCESSES, self.name)

    async def claim(self, user: str) -> bool:
        """One more of `user`'s streams, if all processes together hold fewer than the limit."""
        held = (keys.STREAM_PROCESSES, keys.user_streams(user))
        args = (*held, self.name, str(self.per_user), str(KEPT_S))
        try:
            claimed = await self.redis.eval(_CLAIM, 2, *args)  # type: ignore[misc]
            if claimed == -1:
                await self._renew()
                claimed = await self.redis.eval(_CLAIM, 2, *args)  # type: ignore[misc]
        except BaseException:  # it may have counted, unanswered: write the count whole
            self._dirty.add(user)
            raise
        if claimed == 1:
            self.held[user] += 1
        return bool(claimed == 1)

    def release(self, user: str) -> None:
        """Give one of `user`'s places back (sent in the background, with others)."""
        self.held[user] -= 1
        if not self.held[user]:
            del self.held[user]
        self._released[user] += 1
        if self._sending is None:
            self._sending = asyncio.create_task(self._send_soon())

    async def _send_soon(self) -> None:
        try:
            await asyncio.sleep(0)  # the streams ending in this turn of the loop, too
            await self._send()
        finally:
            self._sending = None

    async def _send(self) -> None:
        """The places given back so far, one pipeline; failed: counts written whole later."""
        while self._released:
            released, self._released = self._released, Counter()
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for user, count in released.items():
                        pipe.hincrby(keys.user_streams(user), self.name, -count)
                    await pipe.execute()
            except Exception:
                self._dirty |= set(released)  # the next renewal writes their counts
                return

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                await self._renew()
            except Exception as error:  # an outage: the next renewal tries again
                logger.warning("the streams' lease could not be renewed: %s", error)

    async def _renew(self) -> None:
        lapsed = await self.redis.eval(
            _RENEW, 1, keys.STREAM_PROCESSES, self.name, str(int(LEASE_S * 1000))
        )  # type: ignore[misc]
        if lapsed and self.held:
            logger.warning("this process's streams' lease had lapsed: counting them again")
        users = set(self.held) if lapsed else self._dirty
        if not users:
            return
        self._dirty = set()
        for user in users:  # the whole count written covers what was given back
            self._released.pop(user, None)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for user in users:
                    if self.held[user]:
                        pipe.hset(keys.user_streams(user), self.name, str(self.held[user]))
                        pipe.expire(keys.user_streams(user), KEPT_S)
                    else:
                        pipe.hdel(keys.user_streams(user), self.name)
                await pipe.execute()
        except BaseException:
            self._dirty |= users
            raise
