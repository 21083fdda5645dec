"""How many of one user's jobs may run at once, across every worker.

A job whose owner already has `TASKSTREAM_MAX_RUNNING_PER_USER` jobs running does not
hold a worker slot while it waits: the lifecycle gives it back to the queue for a moment
(an ARQ retry that is not counted as an attempt), so other users' jobs start at once.
Each running job holds a place in its owner's set, scored by its lease; a place whose
lease lapsed (a killed worker) is taken back by the next claim.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from jobs.infra import keys

# KEYS[1]: the owner's running jobs (task id → lease expiry); ARGV: task id, now, lease
# expiry, the quota. Forget lapsed places, then take one if the quota allows.
_CLAIM = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  redis.call('PEXPIREAT', KEYS[1], math.floor(tonumber(ARGV[3]) * 1000))
  return 1
end
return 0
"""


class RunQuota:
    def __init__(self, redis: Redis, per_user: int, lease_s: float) -> None:
        self.redis = redis
        self.per_user = per_user
        self.lease_s = lease_s

    async def claim(self, owner: str, task_id: str) -> bool:
        """A place among the owner's running jobs (or the one it has, refreshed)."""
        now = time.time()
        args = (task_id, str(now), str(now + self.lease_s), str(self.per_user))
        claimed = await self.redis.eval(_CLAIM, 1, keys.user_running(owner), *args)  # type: ignore[misc]
        return bool(claimed)

    async def release(self, owner: str, task_id: str) -> None:
        await self.redis.zrem(keys.user_running(owner), task_id)

    async def deferrals(self, task_id: str) -> int:
        """How many times the job went back to wait: ARQ counted them as tries."""
        return int(await self.redis.get(keys.deferrals(task_id)) or 0)

    async def defer(self, task_id: str, ttl_s: int) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(keys.deferrals(task_id))
            pipe.expire(keys.deferrals(task_id), ttl_s)
            await pipe.execute()
