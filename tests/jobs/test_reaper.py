"""The reaper: a task left `processing` with a lapsed lease always ends, and an outage's
lapsed leases are not taken for dead workers'."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import httpx
import pytest
from arq.constants import job_key_prefix
from redis.exceptions import ConnectionError

from jobs.infra.config import Settings
from jobs.infra.connections import Patience, connect
from jobs.infra.keys import LEASES
from jobs.record import keys
from jobs.record.tasks import TaskStore
from jobs.runtime.reaper import Reaper
from taskstream.embedded import Valkey
from tests.support import Proc, start_demo, wait_for_status


async def test_a_processing_task_whose_job_is_gone_ends_worker_lost(
    client: httpx.AsyncClient, store: TaskStore
):
    # what an attempt that could not write its end, and whose job ARQ then dropped, leaves
    task = await store.create("demo", max_attempts=3)
    await store.start(task.id, 1)
    await store.leases.hold(task.id, -1)  # lapsed; no ARQ job holds it
    ended = await wait_for_status(client, task.id, {"failed", "completed", "cancelled"})
    assert (ended["status"], ended["errorCode"], ended["attempt"]) == ("failed", "WORKER_LOST", 1)


async def test_an_end_that_a_fail_over_lost_is_found_and_the_task_ended(
    private: Callable[..., Proc], store: TaskStore, auth: dict[str, str]
):
    lease = {"TASKSTREAM_LEASE_SECONDS": "5"}  # time to lose the end before the lease lapses
    web, _ = private("web", **lease), private("worker", **lease)
    async with httpx.AsyncClient(base_url=web.url, headers=auth) as http:
        task_id = await start_demo(http, steps=2, stepSeconds=0.01)
        await wait_for_status(http, task_id, {"completed"})
        # what a replica promoted before the end reached it holds: the task still running
        fields = await store.records.hgetall(keys.task(task_id))  # type: ignore[misc]
        snapshot = json.loads(fields["snapshot"]) | {"status": "processing", "progress": 50}
        lost = {"status": "processing", "snapshot": json.dumps(snapshot)}
        await store.records.hset(keys.task(task_id), mapping=lost)  # type: ignore[misc]
        ended = await wait_for_status(http, task_id, {"failed", "completed", "cancelled"})
    assert (ended["status"], ended["errorCode"]) == ("failed", "WORKER_LOST")


GIVE_UP = Patience(retries=1, cap_s=0.1)  # a command tried twice, then its error


@pytest.fixture
async def unreachable(settings: Settings) -> AsyncIterator[TaskStore]:
    """A store whose Redis is not there (nothing listens on port 1)."""
    redis = connect("redis://127.0.0.1:1/0", "test:reaper", patience=GIVE_UP)
    yield TaskStore(redis, settings)
    await redis.aclose()


@pytest.fixture
async def quiet(own_valkey: Valkey, settings: Settings) -> AsyncIterator[TaskStore]:
    """A store on a Valkey of its own, where no worker's reaper runs but the test's."""
    redis = connect(own_valkey.url, "test:reaper")
    yield TaskStore(redis, replace(settings, redis_url=own_valkey.url))
    await redis.aclose()


async def lapsed_task(store: TaskStore) -> str:
    task = await store.create("demo", max_attempts=3)
    await store.start(task.id, 1)
    await store.leases.hold(task.id, -1)
    await store.redis.set(job_key_prefix + task.id, "{}")  # ARQ still holds the job
    return task.id


async def test_after_an_outage_lapsed_leases_get_another_lease_before_any_is_taken_over(
    quiet: TaskStore, unreachable: TaskStore
):
    store = quiet
    task_id = await lapsed_task(store)
    reaper = Reaper(unreachable, unreachable.redis, {"demo": 30})
    with pytest.raises(ConnectionError):
        await reaper()  # a pass in the outage
    reaper.store, reaper.redis = store, store.redis  # Redis is back
    assert task_id not in await reaper()  # its lease lapsed in the outage: the worker may live
    assert task_id not in await store.leases.lapsed()
    assert await store.redis.zscore(LEASES, task_id) is not None
    assert (await store.get(task_id)).status == "processing"  # type: ignore[union-attr]


async def test_without_an_outage_a_lapsed_lease_is_taken_over_at_once(quiet: TaskStore):
    task_id = await lapsed_task(quiet)
    assert await Reaper(quiet, quiet.redis, {"demo": 30})() == [task_id]
