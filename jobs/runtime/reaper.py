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
import time

from arq.constants import in_progress_key_prefix

from jobs.logs import bind_task
from jobs.record import keys
from jobs.record.tasks import TaskStore, WriteRejected

logger = logging.getLogger(__name__)


# ARQ's in-progress marker, deleted only if it is older than a lease: a lapsed lease's run
# set it at least `lease_s` ago, a run that ARQ is starting now set it a moment ago
_RELEASE = """
if redis.call('PTTL', KEYS[1]) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


async def reap_once(store: TaskStore, in_progress_s: float) -> list[str]:
    """Handle every lapsed lease once; returns the ids taken over.

    `in_progress_s` is how long ARQ's in-progress marker lives (the worker's
    `in_progress_timeout_s`).
    """
    fresh_ms = int((in_progress_s - store.settings.lease_s / 2) * 1000)
    taken: list[str] = []
    for task_id in await store.redis.zrangebyscore(keys.LEASES, 0, time.time()):
        if not await store.redis.zrem(keys.LEASES, task_id):
            continue  # another reaper has it
        task = await store.get(task_id)
        if task is None or task.terminal:
            continue
        attempt = task.snapshot["attempt"]
        taken.append(task_id)
        with bind_task(task_id):
            if attempt < task.snapshot["maxAttempts"]:
                released = await store.redis.eval(  # type: ignore[misc]
                    _RELEASE, 1, in_progress_key_prefix + task_id, str(fresh_ms)
                )
                if released:
                    logger.warning("worker lost, running again", extra={"attempt": attempt})
                continue
            logger.warning("worker lost, no attempt left", extra={"attempt": attempt})
            try:
                await store.lose(task_id, attempt)
            except WriteRejected:
                pass
    return taken
