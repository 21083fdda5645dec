"""The life of one task attempt inside a worker, around the job function of its kind.

    pending → processing → completed | failed | cancelled

The wrapper marks the task `processing`, holds a lease while the attempt runs, enforces
the kind's timeout itself (so a timeout is told apart from a cancel), turns exceptions
into `failed` with an error code, and asks ARQ to retry transient errors with backoff.
A cancel is written by whoever cancels (the task turns `cancelled` at once); the running
job is then aborted by ARQ, and any write it still attempts is refused by the record.

Every task ends, whatever fails: the lease is taken before `processing` is written and
dropped only once the attempt's end (or its retry) is written. Redis unreachable under an
attempt is never a final failure: met by the job, it is a transient `REDIS_UNAVAILABLE`
(retried, visible as `retrying`); met by the attempt's own writes, ARQ is asked to run the
job again later, and the lease, kept, lets a reaper take the task over when it lapses.
ARQ drops a job only once its task's end is written, so a reaper always finds one to run
again, or ends the task (`jobs/runtime/reaper.py`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Iterable
from typing import Any

from arq.worker import Function, Retry, func
from pydantic import ValidationError

from jobs.errors import JobError, TaskGone, TransientError
from jobs.infra.config import Settings
from jobs.infra.connections import is_outage
from jobs.infra.logs import bind_task
from jobs.kind import JobContext, Kind
from jobs.record.tasks import TaskStore, WriteRejected
from jobs.record.values import Event
from jobs.runtime.progress import Progress
from jobs.runtime.quota import RunQuota

logger = logging.getLogger(__name__)

# ARQ's own timeout is only a backstop behind ours, so that ours is the one that fires.
ARQ_TIMEOUT_MARGIN_S = 5.0
# A job whose owner has their quota of jobs running goes back to the queue for this long;
# ARQ counts that as a try, we do not: its limit is only a backstop behind our attempts.
WAIT_FOR_QUOTA_S = 1.0
ARQ_EXTRA_TRIES = 10_000
# An attempt whose writes met an outage goes back to the queue for this long.
OUTAGE_RETRY_S = 5.0


def task_function(kind: Kind[Any], settings: Settings) -> Function:
    """The ARQ function that runs one attempt of a task of `kind`."""
    policy = kind.policy_in(settings)

    async def run(ctx: dict[str, Any], task_id: str, params: dict[str, Any]) -> str:
        if (dispatcher := ctx.get("dispatcher")) is not None:
            dispatcher.started(task_id)  # one slot fewer to fill (`fair.py`)
        with bind_task(task_id):
            try:
                return await _attempt(ctx, kind, task_id, params)
            except Exception as error:
                if not is_outage(error):
                    raise
                # not a final failure, which would drop the job while its task is not ended
                again = "Redis unreachable; the job runs again in %g s"
                extra = {"kind": kind.name, "error": repr(error)}
                logger.warning(again, OUTAGE_RETRY_S, extra=extra)
                raise Retry(defer=OUTAGE_RETRY_S) from error

    return func(
        run,
        name=kind.name,
        timeout=policy.timeout_s + ARQ_TIMEOUT_MARGIN_S,
        max_tries=policy.max_tries + ARQ_EXTRA_TRIES,
    )


async def _attempt(
    ctx: dict[str, Any], kind: Kind[Any], task_id: str, queued: dict[str, Any]
) -> str:
    store: TaskStore = ctx["store"]
    settings: Settings = ctx["settings"]
    policy = kind.policy_in(settings)
    quota = RunQuota(ctx["redis"], settings.max_running_per_user, settings.lease_s)
    task = await store.get(task_id)
    ended = task is None or task.terminal
    owner = task.owner if task is not None and kind.counted else ""
    # the waits for a quota or for the kind's room were tries ARQ counted; we do not
    attempt = int(ctx["job_try"]) - await quota.deferrals(task_id)
    if owner and not ended and not await quota.claim(owner, task_id):
        await quota.defer(task_id, settings.retention_s)
        raise Retry(defer=WAIT_FOR_QUOTA_S)  # no slot held while the owner's others run
    # a heavy kind's memory is bounded by how many of it run at once in this worker
    alike: Counter[str] = ctx["kinds_running"]
    if not ended and policy.per_worker and alike[kind.name] >= policy.per_worker:
        if owner:
            await quota.release(owner, task_id)
        await quota.defer(task_id, settings.retention_s)
        raise Retry(defer=WAIT_FOR_QUOTA_S)
    alike[kind.name] += 1
    try:
        return await _run(ctx, kind, task_id, queued, attempt, quota, owner, ended)
    finally:
        alike[kind.name] -= 1


async def _run(
    ctx: dict[str, Any],
    kind: Kind[Any],
    task_id: str,
    queued: dict[str, Any],
    attempt: int,
    quota: RunQuota,
    owner: str,
    ended: bool,
) -> str:
    store: TaskStore = ctx["store"]
    settings: Settings = ctx["settings"]
    policy = kind.policy_in(settings)
    if not ended:  # before `processing` is written: no task is ever processing unleased
        await store.leases.hold(task_id, settings.lease_s)
    try:
        await store.start(task_id, attempt)
    except WriteRejected as rejected:
        logger.info("task not started: %s", rejected.reason, extra={"kind": kind.name})
        if owner:
            await quota.release(owner, task_id)
        await store.leases.drop(task_id)
        return rejected.reason

    logger.info("task started", extra={"kind": kind.name, "attempt": attempt})
    started = time.monotonic()
    progress = Progress(store, task_id, attempt, settings.coalesce_s)
    job = JobContext(
        task_id, kind.name, attempt, progress, store, ctx["plans"], ctx["users"], settings, ctx
    )
    lease = asyncio.create_task(_hold_lease(store, task_id, settings.lease_s, quota, owner))
    gauges: Counter[str] = ctx["gauges"]
    gauges["jobs_running"] += 1
    outcome = "completed"
    recorded = False  # whether the attempt's end (or its retry) is written: then no lease
    deadline = asyncio.timeout(policy.timeout_s)
    try:
        params = _params(kind, queued)
        try:
            async with deadline:
                result = await kind.run(job, params)
        except Exception as error:
            await progress.stop()  # its last update never lands after its retry or failure
            if is_outage(error):  # the job's own reads or reports met it: worth a retry
                message = "the task store was not reachable"
                raise TransientError(message, code="REDIS_UNAVAILABLE") from error
            raise
        await progress.flush()
        recorded = await _end(store.finish(task_id, attempt, result, kind.result_url(task_id)))
    except TimeoutError:
        if deadline.expired():
            outcome = "TIMEOUT"
            message = f"took longer than {policy.timeout_s:g} s"
        else:  # a timeout of the job's own making
            outcome = "INTERNAL_ERROR"
            logger.exception("job raised", extra={"kind": kind.name, "attempt": attempt})
            message = "the task failed unexpectedly"
        recorded = await _fail(store, task_id, attempt, outcome, message)
    except TransientError as error:
        outcome = error.code
        if attempt >= policy.max_tries:
            tried = f" (tried {attempt} times)" if attempt > 1 else ""
            recorded = await _fail(store, task_id, attempt, error.code, error.message + tried)
        else:
            backoff = policy.retry_backoff_s * 2 ** (attempt - 1)
            await _retry_later(store, task_id, attempt, error, backoff)
            outcome, recorded = "retried", True
            raise Retry(defer=backoff) from error
    except JobError as error:
        outcome = error.code
        recorded = await _fail(store, task_id, attempt, error.code, error.message)
    except TaskGone:
        outcome, recorded = "gone", True
    except Exception as error:
        if is_outage(error):  # this attempt's own writes: not the job's fault (`run`)
            outcome = "unrecorded"
            raise
        outcome = "INTERNAL_ERROR"
        logger.exception("job raised", extra={"kind": kind.name, "attempt": attempt})
        message = "the task failed unexpectedly"
        recorded = await _fail(store, task_id, attempt, "INTERNAL_ERROR", message)
    except asyncio.CancelledError:
        # aborted (the task is already `cancelled`), or the worker is shutting down: then
        # the lease is left to lapse, so that if ARQ does not run the job again, a reaper
        # does (or ends it `WORKER_LOST`); the fence keeps two runs from both writing
        outcome = "interrupted"
        raise
    finally:
        lease.cancel()
        gauges["jobs_running"] -= 1
        if gauge := _GAUGE.get(outcome, "jobs_failed"):
            gauges[gauge] += 1
        if recorded and outcome != "retried":  # ended: the lease settles (`_let_go`)
            await _let_go(store, quota, owner, task_id, settle_s=settings.lease_s)
        else:
            await _let_go(store, quota, owner, task_id, recorded=recorded)
        logger.info(
            "task attempt ended",
            extra={
                "kind": kind.name,
                "attempt": attempt,
                "outcome": outcome,
                "durationS": round(time.monotonic() - started, 3),
            },
        )
    return outcome


# an attempt's outcome, as the worker's gauges count it: every error code is `jobs_failed`,
# an attempt stopped by a cancel or a shutdown is not counted
_GAUGE = {
    "completed": "jobs_complete",
    "retried": "jobs_retried",
    "interrupted": "",
    "gone": "",
    "unrecorded": "",
}


async def _let_go(
    store: TaskStore,
    quota: RunQuota,
    owner: str,
    task_id: str,
    *,
    recorded: bool = True,
    settle_s: float | None = None,
) -> None:
    """Give back the owner's running place, and the lease once the attempt's end (or its
    retry) is written; neither may hide why the attempt ended (both lapse by themselves).

    An ended task's lease is not dropped but left to lapse `settle_s` later: should a
    fail-over lose the end (replication is asynchronous), the reaper still finds the task
    unended then and ends it; otherwise it forgets the lease."""
    try:
        if owner:
            await quota.release(owner, task_id)
        if settle_s is not None:
            await store.leases.hold(task_id, settle_s)
        elif recorded:
            await store.leases.drop(task_id)
    except Exception as error:
        if not is_outage(error):
            raise
        logger.warning("could not let go of the lease: %r", error)


def marker_lifetime(kinds: Iterable[Kind[Any]], settings: Settings) -> float:
    """How long ARQ's in-progress marker lives in a worker running `kinds`: ARQ's own
    rule (its longest function timeout, plus 10 s), for the reaper to tell a dead run's."""
    return max(k.policy_in(settings).timeout_s + ARQ_TIMEOUT_MARGIN_S for k in kinds) + 10


def _params(kind: Kind[Any], queued: dict[str, Any]) -> Any:
    """The queued params as the kind's model (the web process validated them already; a
    process of another version may have queued another shape)."""
    try:
        return kind.params.model_validate(queued)
    except ValidationError as error:
        raise JobError("the task's input is not valid here", code="BAD_PARAMS") from error


async def _end(write: Awaitable[Event]) -> bool:
    """A terminal write of this attempt; refused when the task ended or was taken over.
    True: nothing is left for this attempt to write."""
    try:
        await write
    except WriteRejected as rejected:
        logger.info("terminal write refused: %s", rejected.reason)
    return True


async def _fail(store: TaskStore, task_id: str, attempt: int, code: str, message: str) -> bool:
    return await _end(store.fail(task_id, code, message, attempt=attempt))


async def _retry_later(
    store: TaskStore, task_id: str, attempt: int, error: JobError, backoff: float
) -> None:
    try:
        await store.retry(task_id, attempt, error.code, error.message)
    except WriteRejected:
        raise TaskGone(task_id) from error
    logger.info("retrying in %.1f s", backoff, extra={"attempt": attempt, "code": error.code})


async def _hold_lease(
    store: TaskStore, task_id: str, lease_s: float, quota: RunQuota, owner: str
) -> None:
    """Keep this attempt's lease fresh (and its place among its owner's running jobs);
    the reaper takes over tasks whose lease lapsed."""
    while True:
        try:
            await store.leases.hold(task_id, lease_s)
            if owner:
                await quota.claim(owner, task_id)
        except Exception as error:  # held again once Redis is back (the reaper waits for it)
            if not is_outage(error):
                raise
            logger.warning("could not hold the lease: %r", error)
        await asyncio.sleep(lease_s / 3)
