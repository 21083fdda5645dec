"""The worker lifecycle: cancel, timeout, failure, retry, and a worker killed mid-job."""

from __future__ import annotations

import asyncio
import json
import pickle
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import Job

from jobs.infra.config import Settings
from jobs.infra.connections import SERIALIZERS, load_job
from jobs.record import keys
from jobs.record.tasks import TaskStore
from tests.support import WAIT, Proc, start_demo, wait_for_status, wait_for_task


@pytest.fixture
async def arq(valkey) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(valkey.url), **SERIALIZERS)
    yield pool
    await pool.aclose()


async def job_outcome(arq: ArqRedis, task_id: str) -> object:
    """What ARQ recorded for the job once it ended (awaited, bounded)."""
    async with asyncio.timeout(WAIT):
        while (info := await Job(task_id, arq, _deserializer=load_job).result_info()) is None:
            await asyncio.sleep(0.05)
    return info.result


async def event_log(store: TaskStore, task_id: str) -> list[tuple[str, dict[str, Any]]]:
    entries = await store.redis.xrange(keys.events(task_id))
    return [(f["event"], json.loads(f["data"])) for _, f in entries]


async def test_cancelling_a_queued_task_ends_it_before_it_ever_runs(
    client: httpx.AsyncClient, store: TaskStore, arq: ArqRedis, settings
):
    task = await store.create("demo")
    params = {"steps": 2, "stepSeconds": 0.1}
    await arq.enqueue_job(
        "demo", task.id, params, _job_id=task.id, _queue_name=settings.queue_name, _defer_by=60
    )
    response = await client.post(f"/api/v1/tasks/{task.id}/cancel")
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "cancelled"
    assert await job_outcome(arq, task.id) == "CancelledError()"  # ARQ's, as JSON
    assert [kind for kind, _ in await event_log(store, task.id)] == ["status", "cancelled"]


async def test_cancelling_a_running_task_stops_the_job(
    client: httpx.AsyncClient, store: TaskStore, arq: ArqRedis
):
    task_id = await start_demo(client, steps=100, stepSeconds=0.05)
    await wait_for_status(client, task_id, {"processing"})
    response = await client.post(f"/api/v1/tasks/{task_id}/cancel")
    assert response.json()["data"]["status"] == "cancelled"
    # the job ends: aborted by ARQ, or stopped by itself when its next report was refused
    outcome = await job_outcome(arq, task_id)
    assert outcome in {"CancelledError()", "gone"}
    log = await event_log(store, task_id)
    assert log[-1][0] == "cancelled"  # nothing after it, though the job was mid-way
    assert log[-1][1]["progress"] < 100


async def test_a_job_that_overruns_its_timeout_fails_with_timeout(client: httpx.AsyncClient):
    task_id = await start_demo(client, steps=100, stepSeconds=0.1)  # 10 s, the limit is 4 s
    failed = await wait_for_status(client, task_id, {"failed", "completed"})
    assert (failed["status"], failed["errorCode"]) == ("failed", "TIMEOUT")
    assert failed["attempt"] == 1
    assert 0 < failed["progress"] < 100


async def test_a_job_that_raises_fails_with_its_code_and_message(client: httpx.AsyncClient):
    task_id = await start_demo(client, steps=5, stepSeconds=0.01, failAtStep=3)
    failed = await wait_for_status(client, task_id, {"failed", "completed"})
    assert failed["errorCode"] == "DEMO_FAILURE"
    assert failed["errorMessage"] == "failed at step 3, as asked"
    assert failed["finishedAt"] is not None


async def test_a_transient_error_is_retried_with_the_attempt_shown_then_completes(
    client: httpx.AsyncClient, store: TaskStore
):
    task_id = await start_demo(client, steps=3, stepSeconds=0.01, transientFailures=1)
    done = await wait_for_status(client, task_id, {"failed", "completed"})
    assert (done["status"], done["attempt"], done["errorCode"]) == ("completed", 2, None)
    retrying = [d for _, d in await event_log(store, task_id) if d["currentStage"] == "retrying"]
    assert [(d["status"], d["attempt"], d["errorCode"]) for d in retrying] == [
        ("pending", 1, "UPSTREAM_UNAVAILABLE")
    ]


async def test_transient_errors_past_the_last_attempt_fail_the_task(client: httpx.AsyncClient):
    task_id = await start_demo(client, steps=3, stepSeconds=0.01, transientFailures=5)
    failed = await wait_for_status(client, task_id, {"failed", "completed"})
    assert (failed["status"], failed["errorCode"]) == ("failed", "UPSTREAM_UNAVAILABLE")
    assert failed["attempt"] == failed["maxAttempts"] == 3


@pytest.mark.parametrize(
    ("sig", "max_tries", "outcome", "code", "attempt"),
    [
        (signal.SIGKILL, "3", "completed", None, 2),
        (signal.SIGKILL, "1", "failed", "WORKER_LOST", 1),
        (signal.SIGTERM, "3", "completed", None, 2),
    ],
    ids=["killed-re-run", "killed-no-attempt-left", "stopped-re-run"],
)
async def test_a_worker_gone_mid_job_leaves_no_task_processing_forever(
    private: Callable[..., Proc],
    store: TaskStore,
    sig: signal.Signals,
    max_tries: str,
    outcome: str,
    code: str | None,
    attempt: int,
    auth: dict[str, str],
):
    limits = {"TASKSTREAM_MAX_TRIES_DEMO": max_tries, "TASKSTREAM_TIMEOUT_DEMO": "20"}
    web = private("web", **limits)
    doomed = private("worker", **limits)
    async with httpx.AsyncClient(base_url=web.url, headers=auth) as http:
        task_id = await start_demo(http, steps=30, stepSeconds=0.1)
        await wait_for_task(http, task_id, lambda data: data["progress"] >= 10)
        doomed.stop(sig)
        private("worker", **limits)
        end = await wait_for_status(http, task_id, {"completed", "failed", "cancelled"})
    assert (end["status"], end["errorCode"], end["attempt"]) == (outcome, code, attempt)


class Touch:
    """Unpickled, it creates a file: what an attacker with Redis access would plant."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


async def test_a_pickled_job_planted_in_the_queue_is_never_unpickled(
    worker: Proc, arq: ArqRedis, settings: Settings, tmp_path: Path
):
    marker = tmp_path / "pwned"
    job_id = f"planted-{uuid.uuid4()}"
    planted = pickle.dumps({"t": 1, "f": "demo", "a": [Touch(marker)], "k": {}, "et": 1})
    await arq.set(f"arq:job:{job_id}", planted)
    await arq.zadd(settings.queue_name, {job_id: int(time.time() * 1000)})  # due now
    outcome = await job_outcome(arq, job_id)  # the worker took it, and failed it
    assert "unable to deserialize" in str(outcome)
    assert not marker.exists()


async def test_jobs_travel_as_json(client: httpx.AsyncClient, arq: ArqRedis, settings: Settings):
    task_id = await start_demo(client, steps=1, stepSeconds=0.01)
    assert await job_outcome(arq, task_id) == "completed"  # ARQ's result, after our record's
    raw = await arq.get(f"arq:result:{task_id}")
    assert raw is not None and json.loads(raw)["a"][0] == task_id
