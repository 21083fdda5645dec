"""Task kinds: one module each, and everything else follows from the list of them."""

from __future__ import annotations

import uuid

import httpx
import pytest

from jobs import kinds
from jobs.infra.config import ConfigError, Settings
from jobs.infra.connections import arq_pool
from jobs.record.tasks import TaskStore
from tests import countdown_kind
from tests.support import Account, collect, wait_for_status

BASE = countdown_kind.PATH


def start_url(project: str) -> str:
    return f"/api/v1/projects/{project}/countdowns"


async def countdowns(client: httpx.AsyncClient) -> int:
    listed = await client.get("/api/v1/tasks", params={"kind": "countdown"})
    return int(listed.json()["data"]["total"])


async def test_a_kind_declares_its_start_and_is_started_followed_and_listed(
    client: httpx.AsyncClient,
):
    project = str(uuid.uuid4())
    response = await client.post(start_url(project), json={"start": 3, "word": "go"})
    assert response.status_code == 202, response.text
    accepted = response.json()["data"]
    task_id = accepted["taskId"]
    assert accepted["countdownId"] == task_id and accepted["estimatedTime"] == 3
    assert accepted["links"]["status"] == f"{BASE}/{task_id}/status"
    events = await collect(client, accepted["links"]["events"])
    assert events[-1].event == "completed"
    assert events[-1].data["resultUrl"] == f"{BASE}/{task_id}/result"
    result = await client.get(events[-1].data["resultUrl"])
    assert result.json()["data"] == {"counted": [3, 2, 1], "word": "go", "projectId": project}
    listed = (await client.get("/api/v1/tasks", params={"kind": "countdown"})).json()["data"]
    assert task_id in [t["taskId"] for t in listed["tasks"]]
    assert (await client.get(f"/api/v1/demo/tasks/{task_id}/status")).status_code == 404


async def test_the_start_hook_claims_the_project_and_anothers_is_not_found(
    client: httpx.AsyncClient, stranger: Account
):
    project = str(uuid.uuid4())
    first = await client.post(start_url(project), json={"start": 1, "word": "mine"})
    assert first.status_code == 202, first.text
    before = await countdowns(client)
    for url in (start_url(project), start_url("not-a-project")):
        refused = await client.post(url, json={"start": 1, "word": "x"}, headers=stranger.headers)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == "PROJECT_NOT_FOUND"
    unsigned = await client.post(start_url(project), json={"start": 1, "word": "x"},
                                 headers={"Authorization": ""})  # fmt: skip
    assert unsigned.status_code == 401
    assert await countdowns(client) == before


async def test_bad_bodies_and_a_hooks_refusal_start_nothing(client: httpx.AsyncClient):
    before = await countdowns(client)
    url = start_url(str(uuid.uuid4()))
    for body in ({"start": 0, "word": "go"}, {"start": 3}, {"start": 3, "word": "go", "x": 1}):
        response = await client.post(url, json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    refused = await client.post(url, json={"start": 3, "word": "never"})
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "WORD_REFUSED", "message": "this word is never counted down to",
    }  # fmt: skip
    assert await countdowns(client) == before


async def test_the_openapi_document_describes_the_kinds_start(client: httpx.AsyncClient):
    document = (await client.get("/openapi.json")).json()
    start = document["paths"]["/api/v1/projects/{project_id}/countdowns"]["post"]
    assert start["summary"] == "Count down to a word"
    assert [p["name"] for p in start["parameters"]] == ["project_id"]
    assert {"202", "401", "404", "409", "413", "422", "429"} <= set(start["responses"])
    body = start["requestBody"]["content"]["application/json"]
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
