"""The ARQ worker: its functions (one per task kind), clients and background passes.

`taskstream worker` (the Procfile's `worker:`) runs two ARQ workers on one event loop:
users' work on the main queue, and account mail on a queue with slots of its own
(`Settings.queue_for`), so that a verification or reset mail never waits behind other
users' plans and simulations; a signal stops both. ARQ's own command runs one queue per
process: `arq jobs.worker.WorkerSettings` and `arq jobs.worker.MailWorkerSettings`, each
built from the environment when ARQ looks it up.

The main worker also runs the reaper (lapsed leases), the export sweeper and the gauges
it publishes for `/metrics`.

A Redis outage of any length is waited out (`OutageProofWorker`): ARQ's poll loop would
raise out of the worker at the first command that fails after the client's retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import suppress
from functools import partial
from typing import Any

from arq.worker import Worker

from jobs import kinds
from jobs.accounts import UserStore
from jobs.documents.parts import find_font
from jobs.documents.store import export_store
from jobs.infra import logs, metrics
from jobs.infra.config import Settings
from jobs.infra.connections import SERIALIZERS, Patience, arq_pool, arq_settings, connect, is_outage
from jobs.kinds.export import sweep_exports
from jobs.language.gemini import model_from
from jobs.plans import PlanStore
from jobs.record.tasks import TaskStore
from jobs.runtime.fair import Dispatcher, FairQueue
from jobs.runtime.lifecycle import marker_lifetime, task_function
from jobs.runtime.reaper import Reaper

logger = logging.getLogger(__name__)

METRICS_EVERY_S = 5.0
DISPATCH_EVERY_S = 0.1  # as often as ARQ polls its queue
OUTAGE_POLL_S = 1.0  # how often a worker asks again whether Redis is back


class OutageProofWorker(Worker):
    """ARQ's worker, waiting out a Redis outage instead of exiting: a poll that cannot reach
    Redis is logged (once per outage) and tried again. A job whose ARQ bookkeeping failed
    meanwhile keeps its in-progress marker until it lapses; then ARQ runs it again."""

    _down = False

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except Exception as error:
            if not is_outage(error):
                raise
            if not self._down:
                logger.warning("Redis unreachable; waiting for it", extra={"error": repr(error)})
            self._down = True
            await asyncio.sleep(OUTAGE_POLL_S)
            return
        if self._down:
            logger.warning("Redis is back")
            self._down = False

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        # ARQ counts a job and takes a slot before it asks Redis about it: given back when
        # the asking fails, or an outage would leak one slot per failed poll
        for job_id in job_ids:
            counted = self.job_counter
            try:
                await super().start_jobs([job_id])
            except Exception:
                if self.job_counter > counted and job_id.decode() not in self.tasks:
                    self.job_counter -= 1
                    self.sem.release()
                raise


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    _open_clients(ctx, "taskstream:worker")
    ctx["model"] = model = model_from(settings.gemini)
    ctx["exports"] = export_store(settings)
    store, redis = ctx["store"], ctx["redis"]
    ctx["dispatcher"] = Dispatcher(FairQueue(redis, settings.queue_name), settings.worker_max_jobs)
    passes: list[tuple[str, float, Callable[[], Awaitable[object]]]] = [
        ("dispatching", DISPATCH_EVERY_S, partial(_dispatch, ctx)),
        ("reaper pass", settings.lease_s / 3, Reaper(store, redis, ctx["markers"])),
        ("sweeping exports", settings.sweep_s, partial(sweep_exports, store, ctx["exports"])),
        ("publishing metrics", METRICS_EVERY_S, partial(_publish_gauges, ctx)),
    ]
    ctx["passes"] = [asyncio.create_task(_every(s, act, what)) for what, s, act in passes]
    if model.offline:
        logger.warning("no GEMINI_API_KEY: plans and evaluations come from offline templates")
    if find_font(settings.font_path) is None:
        logger.warning("no font with Hangul: PDF exports fail FONT_MISSING (TASKSTREAM_FONT)")
    logger.info("worker started", extra={"kinds": ctx["kinds"], "model": model.name})


async def shutdown(ctx: dict[str, Any]) -> None:
    for running in ctx["passes"]:
        running.cancel()
    await ctx["model"].aclose()
    await _close_clients(ctx)


async def mail_startup(ctx: dict[str, Any]) -> None:
    _open_clients(ctx, "taskstream:mail")
    logger.info("mail worker started", extra={"kinds": ctx["kinds"]})


async def mail_shutdown(ctx: dict[str, Any]) -> None:
    await _close_clients(ctx)


def _open_clients(ctx: dict[str, Any], name: str) -> None:
    """The worker's Redis client and the stores over it, for its jobs (`JobContext`)."""
    settings: Settings = ctx["settings"]
    patience = Patience.within(settings.redis_patience_s)
    ctx["redis"] = redis = connect(settings.require_redis_url(), name, patience=patience)
    ctx["store"] = TaskStore.connected(redis, settings, name, patience)
    ctx["plans"] = PlanStore(redis)
    ctx["users"] = UserStore(redis)


async def _close_clients(ctx: dict[str, Any]) -> None:
    await ctx["store"].aclose()
    await ctx["redis"].aclose()


async def _every(seconds: float, action: Callable[[], Awaitable[object]], what: str) -> None:
    """`action` now and every `seconds`; a failed pass is logged (an outage is the poll's
    to say, once) and the next one goes on."""
    while True:
        try:
            await action()
        except Exception as error:
            if not is_outage(error):
                logger.exception("%s failed", what)
        await asyncio.sleep(seconds)


async def _dispatch(ctx: dict[str, Any]) -> None:
    """Users' parked jobs into ARQ's queue, in their turns, as this worker's slots free up
    (`jobs/runtime/fair.py`)."""
    await ctx["dispatcher"](ctx["gauges"]["jobs_running"])


async def _publish_gauges(ctx: dict[str, Any]) -> None:
    """This worker's gauges (counted by the lifecycle), for the web processes' /metrics."""
    gauges: Counter[str] = ctx["gauges"]
    shown = {name: gauges[name] for name in metrics.WORKER_GAUGES}
    await metrics.publish(ctx["redis"], metrics.WORKERS, shown, int(METRICS_EVERY_S * 3))


def worker_settings(settings: Settings, *, mail: bool = False) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker`, built from our settings: the main
    queue's worker, or (`mail`) the account-mail queue's."""
    every = kinds.load(settings.extra_kinds)
    queue = "mail" if mail else "main"
    mine = [k for k in every.values() if k.queue == queue]
    queue_name = mine[0].queue_in(settings)
    # how long each kind's ARQ in-progress marker lives (its queue's worker decides):
    # the reaper tells a dead run's marker by its age
    markers = {
        k.name: marker_lifetime([q for q in every.values() if q.queue == k.queue], settings)
        for k in every.values()
    }
    patience = Patience.within(settings.redis_patience_s)
    return {
        "functions": [task_function(kind, settings) for kind in mine],
        "redis_settings": arq_settings(settings.require_redis_url(), patience),
        "redis_pool": arq_pool(settings.require_redis_url(), queue_name, patience),
        "queue_name": queue_name,
        "on_startup": mail_startup if mail else startup,
        "on_shutdown": mail_shutdown if mail else shutdown,
        "ctx": {
            "settings": settings,
            "kinds": [k.name for k in mine],
            "markers": markers,
            "gauges": Counter[str](),
            "kinds_running": Counter[str](),  # by kind, for `KindPolicy.per_worker`
        },
        "allow_abort_jobs": True,
        "max_jobs": settings.mail_worker_max_jobs if mail else settings.worker_max_jobs,
        "keep_result": 3600,
        "poll_delay": 0.1,
        "handle_signals": not mail,  # the main worker's handler stops both
        **SERIALIZERS,
    }


def run(settings: Settings) -> None:
    """Run both workers until SIGINT/SIGTERM (ARQ finishes or re-queues running jobs)."""
    worker = OutageProofWorker(**worker_settings(settings))
    mail = OutageProofWorker(**worker_settings(settings, mail=True))
    worker.on_stop = mail.handle_sig
    mail.main_task = mail.loop.create_task(mail.main())
    try:
        worker.run()
    finally:
        with suppress(asyncio.CancelledError):
            mail.loop.run_until_complete(mail.main_task)
        mail.loop.run_until_complete(mail.close())


def __getattr__(name: str) -> dict[str, Any]:
    """`WorkerSettings` and `MailWorkerSettings` for `arq jobs.worker.…`: made from the
    environment when ARQ looks them up, so that importing this module reads nothing."""
    if name not in {"WorkerSettings", "MailWorkerSettings"}:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    logs.configure()
    mail_queue = name == "MailWorkerSettings"
    return {**worker_settings(Settings.from_env(), mail=mail_queue), "handle_signals": True}
