"""Takes over tasks whose worker died mid-attempt (SIGKILL, power loss).

A running attempt refreshes its lease every third of `lease_s`. When a lease lapses, one
reaper (the ZREM decides which) either lets ARQ run the job again at once, by deleting
ARQ's in-progress marker, or, when no attempt is left, ends the task `failed` with
`WORKER_LOST`. Writes of the lost attempt, should it still be alive, are refused by the
record's attempt fence. ARQ's marker is removed only when it is the dead run's: a worker
stopped by SIGTERM leaves its job queued, and the next run's fresh marker must stay, or
ARQ would start the job a third time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from arq.constants import in_progress_key_prefix
from redis.asyncio import Redis

from jobs.logs import bind_task
from jobs.record.tasks import TaskStore, WriteRejected

logger = logging.getLogger(__name__)


# ARQ's in-progress marker, deleted only if it is older than a lease: a lapsed lease's run
# set it at least `lease_s` ago, a run that ARQ is starting now set it a moment ago
_RELEASE = """
if redis.call('PTTL', KEYS[1]) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


async def reap_once(store: TaskStore, redis: Redis, markers: Mapping[str, float]) -> list[str]:
    """Handle every lapsed lease once; returns the ids taken over.

    `markers` is how long ARQ's in-progress marker of each kind's job lives (its
    worker's `in_progress_timeout_s`).
    """
    taken: list[str] = []
    for task_id in await store.lapsed_leases():
        if not await store.drop_lease(task_id):
            continue  # another reaper has it
        task = await store.get(task_id)
        if task is None or task.terminal:
            continue
        fresh_ms = int((markers[task.snapshot["kind"]] - store.settings.lease_s / 2) * 1000)
        attempt = task.snapshot["attempt"]
        taken.append(task_id)
        with bind_task(task_id):
            if attempt < task.snapshot["maxAttempts"]:
                marker = in_progress_key_prefix + task_id
                released = await redis.eval(_RELEASE, 1, marker, str(fresh_ms))  # type: ignore[misc]
                if released:
                    logger.warning("worker lost, running again", extra={"attempt": attempt})
                continue
            logger.warning("worker lost, no attempt left", extra={"attempt": attempt})
            try:
                await store.lose(task_id, attempt)
            except WriteRejected:
                pass
    return taken
