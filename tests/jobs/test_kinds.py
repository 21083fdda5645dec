"""Task kinds: one module each, and everything else follows from the list of them."""

from __future__ import annotations

import httpx
import pytest

from jobs import kinds
from jobs.config import ConfigError, Settings
from jobs.connections import arq_pool
from jobs.record.tasks import TaskStore
from tests import countdown_kind
from tests.support import collect, wait_for_status

BASE = "/api/v1/countdowns"


async def test_a_kind_registered_by_its_module_is_started_followed_and_listed(
    client: httpx.AsyncClient,
):
    response = await client.post(BASE, json={"start": 3, "word": "go"})
    assert response.status_code == 202, response.text
    accepted = response.json()["data"]
    task_id = accepted["taskId"]
    assert accepted["links"]["status"] == f"{BASE}/{task_id}/status"
    events = await collect(client, accepted["links"]["events"])
    assert events[-1].event == "completed"
    assert events[-1].data["resultUrl"] == f"{BASE}/{task_id}/result"
    result = await client.get(events[-1].data["resultUrl"])
    assert result.json()["data"] == {"counted": [3, 2, 1], "word": "go"}
    listed = (await client.get("/api/v1/tasks", params={"kind": "countdown"})).json()["data"]
    assert task_id in [t["taskId"] for t in listed["tasks"]]
    assert (await client.get(f"/api/v1/demo/tasks/{task_id}/status")).status_code == 404


async def test_the_kinds_params_are_its_requests_body_and_bad_ones_start_nothing(
    client: httpx.AsyncClient,
):
    before = (await client.get("/api/v1/tasks", params={"kind": "countdown"})).json()["data"]
    for body in ({"start": 0, "word": "go"}, {"start": 3}, {"start": 3, "word": "go", "x": 1}):
        response = await client.post(BASE, json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    after = (await client.get("/api/v1/tasks", params={"kind": "countdown"})).json()["data"]
    assert after["total"] == before["total"]


async def test_the_openapi_document_describes_the_kind(client: httpx.AsyncClient):
    document = (await client.get("/openapi.json")).json()
    body = document["paths"][BASE]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].startswith("#/components/schemas/")
    assert f"{BASE}/{{task_id}}/cancel" in document["paths"]
    assert "countdown" in document["components"]["schemas"]["Task"]["properties"]["kind"]["enum"]


async def test_params_the_worker_cannot_read_fail_the_task_bad_params(
    client: httpx.AsyncClient, store: TaskStore, settings: Settings
):
    task = await store.create("countdown")
    queue = arq_pool(settings.require_redis_url(), settings.queue_name)
    try:  # as a web process of another version might have queued it
        await queue.enqueue_job("countdown", task.id, {"begin": 3}, _job_id=task.id)
    finally:
        await queue.aclose(close_connection_pool=True)
    failed = await wait_for_status(client, task.id, {"failed", "completed"})
    assert (failed["status"], failed["errorCode"]) == ("failed", "BAD_PARAMS")


def test_a_kinds_policy_is_its_modules_unless_the_environment_overrides_it():
    stated = countdown_kind.KIND.policy
    assert countdown_kind.KIND.policy_in(Settings.from_env({})) == stated
    env = {"TASKSTREAM_TIMEOUT_COUNTDOWN": "7", "TASKSTREAM_MAX_TRIES_COUNTDOWN": "4"}
    policy = countdown_kind.KIND.policy_in(Settings.from_env(env))
    assert (policy.timeout_s, policy.max_tries, policy.retry_backoff_s) == (
        7, 4, stated.retry_backoff_s,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="TASKSTREAM_TIMEOUT_COUNTDOWN"):
        Settings.from_env({"TASKSTREAM_TIMEOUT_COUNTDOWN": "soon"})


def test_the_list_refuses_a_module_without_a_kind_and_two_kinds_of_one_name():
    assert kinds.load(["tests.countdown_kind"])["countdown"] is countdown_kind.KIND
    assert "countdown" not in kinds.load()
    for bad in (["tests.no_such_module"], ["tests.support"], ["jobs.kinds.demo"]):
        with pytest.raises(ConfigError, match="TASKSTREAM_EXTRA_KINDS|two task kinds"):
            kinds.load(bad)
