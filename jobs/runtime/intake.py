"""Where work comes in: a task created and queued (`submit`), or called off (`cancel`).
The web process's side of the queue; the worker takes it from there."""

from __future__ import annotations

import logging
from typing import Any

from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss
from arq.utils import timestamp_ms
from pydantic import BaseModel

from jobs.infra.config import Settings
from jobs.infra.logs import bind_task
from jobs.kind import Kind
from jobs.record.tasks import TaskStore, WriteRejected
from jobs.record.values import Task
from jobs.runtime.fair import FairQueue

logger = logging.getLogger(__name__)


async def submit(
    store: TaskStore,
    queue: ArqRedis,
    settings: Settings,
    kind: Kind[Any],
    params: BaseModel,
    *,
    owner: str = "",
    estimated_time: float | None = None,
    in_flight_limit: int | None = None,
) -> Task:
    """Create a `pending` task and enqueue its job under the same id; `WriteRejected`
    ("limit") when the owner has `in_flight_limit` tasks not ended."""
    task = await store.create(
        kind.name,
        max_attempts=kind.policy_in(settings).max_tries,
        owner=owner,
        estimatedTime=estimated_time,
        in_flight_limit=in_flight_limit,
    )
    with bind_task(task.id):
        try:
            queued = params.model_dump(mode="json")
            queue_name = kind.queue_in(settings)
            fairly = owner and kind.counted and settings.fair_dispatch
            fair = FairQueue(queue, queue_name) if fairly else None
            await queue.enqueue_job(
                kind.name,
                task.id,
                queued,
                _job_id=task.id,
                _queue_name=queue_name if fair is None else fair.parked,
            )
            if fair is not None:  # dispatched in its owner's turn (`fair.py`)
                await fair.park(owner, task.id)
        except Exception:
            logger.exception("enqueue failed", extra={"kind": kind.name})
            await store.fail(task.id, "ENQUEUE_FAILED", "the task could not be queued")
            raise
        logger.info("task queued", extra={"kind": kind.name})
    return task


async def cancel(
    store: TaskStore, queue: ArqRedis, settings: Settings, kind: Kind[Any], task_id: str
) -> None:
    """End the task `cancelled` now, then have ARQ stop (or never start) its job: the one
    way every transport cancels (HTTP, the WebSocket).

    Raises `WriteRejected` ("final") when the task had already ended.
    """
    queue_name = kind.queue_in(settings)
    await store.cancel(task_id)
    await FairQueue(queue, queue_name).unpark(task_id)  # a parked job: due now, to end
    async with queue.pipeline(transaction=True) as tr:
        # a job deferred for a retry would see the abort only when due: bring it forward
        tr.zadd(queue_name, {task_id: 1}, xx=True)
        tr.zadd(abort_jobs_ss, {task_id: timestamp_ms()})
        await tr.execute()
    with bind_task(task_id):
        logger.info("task cancelled")


__all__ = ["WriteRejected", "cancel", "submit"]
