"""Leases of running attempts, on `REDIS_URL` with the queue: a worker refreshes its
attempt's lease while it runs; one that lapsed means the worker died
(`jobs/runtime/reaper.py`)."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from jobs.infra.keys import LEASES


class Leases:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def hold(self, task_id: str, seconds: float) -> None:
        await self.redis.zadd(LEASES, {task_id: time.time() + seconds})

    async def drop(self, task_id: str) -> bool:
        """Forget the lease; False when it was already gone (another reaper took it)."""
        return bool(await self.redis.zrem(LEASES, task_id))

    async def lapsed(self) -> list[str]:
        found: list[str] = await self.redis.zrangebyscore(LEASES, 0, time.time())
        return found
