"""Takes over tasks whose worker died mid-attempt (SIGKILL, power loss).

A running attempt refreshes its lease every third of `lease_s`. When a lease lapses, one
reaper (the ZREM decides which) either lets ARQ run the job again at once, by deleting
ARQ's in-progress marker, or, when no attempt is left, ends the task `failed` with
`WORKER_LOST`. Writes of the lost attempt, should it still be alive, are refused by the
record's attempt fence.
"""

from __future__ import annotations

import asyncio
import logging
import time

from arq.constants import in_progress_key_prefix

from jobs.lifecycle import LEASES
from jobs.logs import bind_task
from jobs.tasks import TaskStore, WriteRejected, now_iso

logger = logging.getLogger(__name__)


async def reap_once(store: TaskStore) -> list[str]:
    """Handle every lapsed lease once; returns the ids taken over."""
    taken: list[str] = []
    for task_id in await store.redis.zrangebyscore(LEASES, 0, time.time()):
        if not await store.redis.zrem(LEASES, task_id):
            continue  # another reaper has it
        task = await store.get(task_id)
        if task is None or task.terminal:
            continue
        taken.append(task_id)
        attempt = task.snapshot["attempt"]
        with bind_task(task_id):
            if attempt < task.snapshot["maxAttempts"]:
                logger.warning("worker lost, running again", extra={"attempt": attempt})
                await store.redis.delete(in_progress_key_prefix + task_id)
                continue
            logger.warning("worker lost, no attempt left", extra={"attempt": attempt})
            patch = {
                "status": "failed",
                "finishedAt": now_iso(),
                "currentStage": None,
                "errorCode": "WORKER_LOST",
                "errorMessage": "the worker running this task stopped",
            }
            try:
                await store.write(task_id, "failed", patch, fence=attempt)
            except WriteRejected:
                pass
    return taken


async def reap_forever(store: TaskStore, interval: float) -> None:
    while True:
        try:
            await reap_once(store)
        except Exception:
            logger.exception("reaper pass failed")
        await asyncio.sleep(interval)
