"""The ARQ worker: its functions (one per task kind), clients and background reaper.

Run with `taskstream worker` (the Procfile's `worker:`). One process runs two ARQ
workers on one event loop: users' work on the main queue, and account mail on a queue
with slots of its own (`Settings.queue_for`), so that a verification or reset mail never
waits behind other users' plans and simulations. A signal stops both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from functools import partial
from typing import Any

from arq.worker import Worker

from jobs import kinds, metrics
from jobs.config import Settings
from jobs.connections import SERIALIZERS, arq_pool, arq_settings, connect
from jobs.documents import find_font
from jobs.kinds.export import sweep_exports
from jobs.llm import model_from
from jobs.record.tasks import TaskStore
from jobs.runtime.lifecycle import task_function
from jobs.runtime.reaper import reap_once

logger = logging.getLogger(__name__)

METRICS_EVERY_S = 5.0


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    redis = connect(settings.require_redis_url(), "taskstream:worker")
    ctx["store"] = TaskStore(redis, settings)
    store, in_progress_s = ctx["store"], ctx["arq_worker"].in_progress_timeout_s
    reap = partial(reap_once, store, in_progress_s)
    sweep = partial(sweep_exports, store, settings.export_dir)
    ctx["reaper"] = asyncio.create_task(_every(settings.lease_s / 3, reap, "reaper pass"))
    ctx["publisher"] = asyncio.create_task(
        _every(METRICS_EVERY_S, partial(_publish_metrics, ctx), "publishing metrics")
    )
    ctx["sweeper"] = asyncio.create_task(_every(settings.sweep_s, sweep, "sweeping exports"))
    ctx["model"] = model = model_from(settings.gemini)
    if model.offline:
        logger.warning("no GEMINI_API_KEY: plans and evaluations come from offline templates")
    if find_font(settings.font_path) is None:
        logger.warning("no font with Hangul: PDF exports fail FONT_MISSING (TASKSTREAM_FONT)")
    names = [f.name for f in ctx["arq_worker"].functions.values()]
    logger.info("worker started", extra={"kinds": names, "model": model.name})


async def _every(seconds: float, action: Callable[[], Awaitable[object]], what: str) -> None:
    """`action` now and every `seconds`; a failed pass is logged and the next one goes on."""
    while True:
        try:
            await action()
        except Exception:
            logger.exception("%s failed", what)
        await asyncio.sleep(seconds)


async def _publish_metrics(ctx: dict[str, Any]) -> None:
    """This worker's gauges, for the web processes' /metrics."""
    worker = ctx["arq_worker"]
    gauges = {
        "jobs_running": len(worker.job_tasks),
        "jobs_complete": worker.jobs_complete,
        "jobs_failed": worker.jobs_failed,
        "jobs_retried": worker.jobs_retried,
    }
    await metrics.publish_worker(ctx["store"].redis, gauges, int(METRICS_EVERY_S * 3))


async def mail_startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    ctx["store"] = TaskStore(connect(settings.require_redis_url(), "taskstream:mail"), settings)


async def mail_shutdown(ctx: dict[str, Any]) -> None:
    await ctx["store"].redis.aclose()


async def shutdown(ctx: dict[str, Any]) -> None:
    ctx["publisher"].cancel()
    ctx["sweeper"].cancel()
    ctx["reaper"].cancel()
    await ctx["model"].aclose()
    await ctx["store"].redis.aclose()


def worker_settings(settings: Settings, *, mail: bool = False) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker`, built from our settings: the main
    queue's worker, or (`mail`) the account-mail queue's."""
    mine = [k for k in kinds.load(settings.extra_kinds).values() if k.mail == mail]
    queue_name = settings.queue_for(mine[0])
    return {
        "functions": [task_function(kind, settings) for kind in mine],
        "redis_settings": arq_settings(settings.require_redis_url()),
        "redis_pool": arq_pool(settings.require_redis_url(), queue_name),
        "queue_name": queue_name,
        "on_startup": mail_startup if mail else startup,
        "on_shutdown": mail_shutdown if mail else shutdown,
        "ctx": {"settings": settings},
        "allow_abort_jobs": True,
        "max_jobs": settings.mail_worker_max_jobs if mail else settings.worker_max_jobs,
        "keep_result": 3600,
        "poll_delay": 0.1,
        "handle_signals": not mail,  # the main worker's handler stops both
        **SERIALIZERS,
    }


def run(settings: Settings) -> None:
    """Run both workers until SIGINT/SIGTERM (ARQ finishes or re-queues running jobs)."""
    worker = Worker(**worker_settings(settings))
    worker.ctx["arq_worker"] = worker  # for its gauges
    mail = Worker(**worker_settings(settings, mail=True))
    mail.ctx["arq_worker"] = mail
    # the reaper tells a dead run's in-progress marker by its age: one lifetime for all
    mail.in_progress_timeout_s = worker.in_progress_timeout_s
    worker.on_stop = mail.handle_sig
    mail.main_task = mail.loop.create_task(mail.main())
    try:
        worker.run()
    finally:
        with suppress(asyncio.CancelledError):
            mail.loop.run_until_complete(mail.main_task)
        mail.loop.run_until_complete(mail.close())
