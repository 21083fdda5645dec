"""Takes over tasks whose worker died mid-attempt (SIGKILL, power loss), or whose attempt
could not write its end (Redis went away under it).

A running attempt refreshes its lease every third of `lease_s`, and lets go of it only once
its end is written (an ended task's lease lapses one lease later, and is then forgotten: a
fail-over that lost the end leaves the task unended, and it is found). When a lease
lapses, one reaper (the ZREM decides which) either lets ARQ run the job again at once, by
deleting ARQ's in-progress marker, or, when no attempt is left or ARQ holds no job to run
again, ends the task `failed` with `WORKER_LOST`. Writes of the lost attempt, should it
still be alive, are refused by the record's attempt fence.
ARQ's marker is removed only when it is the dead run's: a worker stopped by SIGTERM leaves
its job queued, and the next run's fresh marker must stay, or ARQ would start the job a
third time.

After an outage every lease has lapsed, the live workers' too (they could not refresh
them): the first pass after one gives each lapsed lease another `lease_s` instead, in which
the live ones are refreshed; only a dead worker's lapses again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from arq.constants import in_progress_key_prefix, job_key_prefix
from redis.asyncio import Redis

from jobs.infra import keys
from jobs.infra.connections import is_outage
from jobs.infra.logs import bind_task
from jobs.record.tasks import TaskStore, WriteRejected
from jobs.record.values import Task

logger = logging.getLogger(__name__)


# ARQ's in-progress marker, deleted only if it is older than a lease: a lapsed lease's run
# set it at least `lease_s` ago, a run that ARQ is starting now set it a moment ago
_RELEASE = """
if redis.call('PTTL', KEYS[1]) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


class Reaper:
    """The reaper's passes (`jobs/worker.py` runs one every third of a lease)."""

    def __init__(self, store: TaskStore, redis: Redis, markers: Mapping[str, float]) -> None:
        self.store = store
        self.redis = redis
        # how long ARQ's in-progress marker of each kind's job lives (its worker's
        # `in_progress_timeout_s`)
        self.markers = markers
        self._outage = False  # the last pass could not reach Redis

    async def __call__(self) -> list[str]:
        try:
            if self._outage:
                await self._grace()
                self._outage = False
                return []
            return await self.reap_once()
        except Exception as error:
            self._outage = self._outage or is_outage(error)
            raise

    async def _grace(self) -> None:
        lapsed = await self.store.leases.lapsed()
        if lapsed:
            until = time.time() + self.store.settings.lease_s
            await self.redis.zadd(keys.LEASES, dict.fromkeys(lapsed, until), xx=True)
            logger.warning("after an outage, %d lapsed leases get another lease", len(lapsed))

    async def reap_once(self) -> list[str]:
        """Handle every lapsed lease once; returns the ids taken over."""
        store = self.store
        taken: list[str] = []
        for task_id in await store.leases.lapsed():
            if not await store.leases.drop(task_id):
                continue  # another reaper has it
            task = await store.get(task_id)
            if task is None or task.terminal:
                continue
            taken.append(task_id)
            with bind_task(task_id):
                await self._take_over(task)
        return taken

    async def _take_over(self, task: Task) -> None:
        task_id, attempt = task.id, task.snapshot["attempt"]
        queued = bool(await self.redis.exists(job_key_prefix + task_id))
        if queued and attempt < task.snapshot["maxAttempts"]:
            lifetime = self.markers[task.snapshot["kind"]]
            fresh_ms = int((lifetime - self.store.settings.lease_s / 2) * 1000)
            marker = in_progress_key_prefix + task_id
            released = await self.redis.eval(_RELEASE, 1, marker, str(fresh_ms))  # type: ignore[misc]
            if released:
                logger.warning("worker lost, running again", extra={"attempt": attempt})
            return
        why = "no attempt left" if queued else "its job is gone"
        logger.warning("worker lost, %s", why, extra={"attempt": attempt})
        try:
            await self.store.lose(task_id, attempt)
        except WriteRejected:
            pass
