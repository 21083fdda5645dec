"""The ARQ worker: its functions (one per task kind), clients and background reaper.

Run with `taskstream worker` (the Procfile's `worker:`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from arq.worker import Worker

from jobs import metrics
from jobs.business_plan import business_plan
from jobs.config import Settings
from jobs.connections import arq_pool, arq_settings, connect
from jobs.demo import demo
from jobs.documents import find_font
from jobs.evaluation import evaluation
from jobs.export import export, sweep_exports
from jobs.financial import financial
from jobs.lifecycle import JobBody, task_function
from jobs.llm import model_from
from jobs.mail import email
from jobs.reaper import reap_forever
from jobs.tasks import TaskStore

logger = logging.getLogger(__name__)

BODIES: dict[str, JobBody] = {
    "demo": demo,
    "business_plan": business_plan,
    "evaluation": evaluation,
    "financial": financial,
    "export": export,
    "email": email,
}


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    redis = connect(settings.require_redis_url(), "taskstream:worker")
    ctx["store"] = TaskStore(redis, settings)
    in_progress_s = ctx["arq_worker"].in_progress_timeout_s
    ctx["reaper"] = asyncio.create_task(
        reap_forever(ctx["store"], settings.lease_s / 3, in_progress_s)
    )
    ctx["publisher"] = asyncio.create_task(_publish_metrics(ctx))
    ctx["sweeper"] = asyncio.create_task(_sweep_forever(ctx["store"], settings))
    ctx["model"] = model = model_from(settings.gemini)
    if model.offline:
        logger.warning("no GEMINI_API_KEY: plans and evaluations come from offline templates")
    if find_font(settings.font_path) is None:
        logger.warning("no font with Hangul: PDF exports fail FONT_MISSING (TASKSTREAM_FONT)")
    logger.info("worker started", extra={"kinds": sorted(BODIES), "model": model.name})


async def _sweep_forever(store: TaskStore, settings: Settings) -> None:
    """Remove the files of expired exports, now and then."""
    while True:
        try:
            await sweep_exports(store, settings.export_dir)
        except Exception:
            logger.exception("sweeping exports failed")
        await asyncio.sleep(settings.sweep_s)


async def _publish_metrics(ctx: dict[str, Any], every_s: float = 5.0) -> None:
    """This worker's gauges, for the web processes' /metrics."""
    while True:
        worker = ctx.get("arq_worker")
        if worker is not None:
            gauges = {
                "jobs_running": len(worker.job_tasks),
                "jobs_complete": worker.jobs_complete,
                "jobs_failed": worker.jobs_failed,
                "jobs_retried": worker.jobs_retried,
            }
            try:
                await metrics.publish_worker(ctx["store"].redis, gauges, int(every_s * 3))
            except Exception:
                logger.exception("publishing metrics failed")
        await asyncio.sleep(every_s)


async def shutdown(ctx: dict[str, Any]) -> None:
    ctx["publisher"].cancel()
    ctx["sweeper"].cancel()
    ctx["reaper"].cancel()
    await ctx["store"].redis.aclose()


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker`, built from our settings."""
    return {
        "functions": [task_function(kind, body, settings) for kind, body in BODIES.items()],
        "redis_settings": arq_settings(settings.require_redis_url()),
        "redis_pool": arq_pool(settings.require_redis_url(), settings.queue_name),
        "queue_name": settings.queue_name,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "ctx": {"settings": settings},
        "allow_abort_jobs": True,
        "max_jobs": settings.worker_max_jobs,
        "keep_result": 3600,
        "poll_delay": 0.1,
    }


def run(settings: Settings) -> None:
    """Run a worker until SIGINT/SIGTERM (ARQ finishes or re-queues the running jobs)."""
    worker = Worker(**worker_settings(settings))
    worker.ctx["arq_worker"] = worker  # for its gauges
    worker.run()
