"""The HTTP contract: the envelope, status codes, polling with ETag, result and cancel."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support import start_demo, wait_for_status

UNKNOWN = "6f1c2d3e-4b5a-4c6d-8e7f-901234567890"


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


async def tasks_started(client: httpx.AsyncClient) -> int:
    """How many tasks the account has: a queue a running worker drains cannot say."""
    listed = await client.get("/api/v1/tasks")
    return int(listed.json()["data"]["total"])


async def test_starting_a_demo_answers_202_with_the_task_and_its_links(client: httpx.AsyncClient):
    response = await client.post("/api/v1/demo/tasks", json={"steps": 3, "stepSeconds": 0.5})
    assert response.status_code == 202
    data = response.json()["data"]
    assert response.json()["success"] is True
    assert data["status"] == "pending"
    assert data["estimatedTime"] == 1.5
    assert data["links"]["events"] == f"/api/v1/tasks/{data['taskId']}/events"
    assert response.headers["location"] == data["links"]["status"]


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (f"/api/v1/tasks/{UNKNOWN}/status", "TASK_NOT_FOUND"),
        (f"/api/v1/tasks/{UNKNOWN}/result", "TASK_NOT_FOUND"),
        (f"/api/v1/tasks/{UNKNOWN}/events", "TASK_NOT_FOUND"),
        ("/api/v1/tasks/not-a-uuid/status", "TASK_NOT_FOUND"),
        ("/api/v1/tasks/6F1C2D3E-4B5A-4C6D-8E7F-901234567890/status", "TASK_NOT_FOUND"),
        ("/api/v1/tasks/..%2F..%2Fetc/status", "NOT_FOUND"),
    ],
    ids=["status", "result", "events", "malformed", "uppercase", "traversal"],
)
async def test_unknown_and_malformed_ids_answer_404_in_the_envelope(
    client: httpx.AsyncClient, path: str, code: str
):
    assert_error(await client.get(path), 404, code)


async def test_cancel_of_an_unknown_task_is_404(client: httpx.AsyncClient):
    assert_error(await client.post(f"/api/v1/tasks/{UNKNOWN}/cancel"), 404, "TASK_NOT_FOUND")


async def test_an_unknown_path_and_a_wrong_method_answer_in_the_envelope(
    client: httpx.AsyncClient,
):
    assert_error(await client.get("/api/v1/nothing-here"), 404, "NOT_FOUND")
    assert_error(await client.get("/api/v1/demo/tasks"), 405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize(
    "body",
    ['{"steps": 3', "not json", '{"steps": 3}}', b"\xff\xfe"],
    ids=["truncated", "text", "trailing", "not-utf8"],
)
async def test_a_body_that_is_not_json_is_422_and_starts_nothing(
    client: httpx.AsyncClient, body: str | bytes
):
    before = await tasks_started(client)
    response = await client.post(
        "/api/v1/demo/tasks", content=body, headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "INVALID_JSON")
    assert await tasks_started(client) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps": 0}, "steps"),
        ({"steps": 100000}, "steps"),
        ({"stepSeconds": -1}, "stepSeconds"),
        ({"stepSeconds": 11}, "stepSeconds"),
        ({"steps": "many"}, "steps"),
        ({"failAtStep": 0}, "failAtStep"),
        ({"steps": 5, "failAtStep": 6}, "body"),
        ({"steps": 1000, "stepSeconds": 10}, "body"),
        ({"colour": "red"}, "colour"),
        ([1, 2], "body"),
    ],
    ids=[
        "zero-steps", "too-many-steps", "negative-seconds", "slow-steps", "steps-not-int",
        "fail-at-zero", "fail-after-end", "over-an-hour", "unknown-field", "not-an-object",
    ],
)  # fmt: skip
async def test_a_demo_request_beyond_sane_limits_is_422_with_the_field(
    client: httpx.AsyncClient, body: object, field: str
):
    error = assert_error(
        await client.post("/api/v1/demo/tasks", json=body), 422, "VALIDATION_ERROR"
    )
    assert field in [d["field"] for d in error["details"]]


async def test_an_empty_body_starts_a_demo_with_the_defaults(client: httpx.AsyncClient):
    response = await client.post("/api/v1/demo/tasks")
    assert response.status_code == 202
    assert response.json()["data"]["estimatedTime"] == 2.0
    await client.post(response.json()["data"]["links"]["cancel"])


async def test_polling_with_the_current_etag_answers_304_and_after_a_change_200(
    client: httpx.AsyncClient,
):
    task_id = await start_demo(client, steps=2, stepSeconds=0.2)
    done = await wait_for_status(client, task_id, {"completed"})
    url = f"/api/v1/tasks/{task_id}/status"
    first = await client.get(url)
    etag = first.headers["etag"]
    assert etag == f'"v{done["version"]}"'
    again = await client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert (await client.get(url, headers={"If-None-Match": '"v1"'})).status_code == 200


async def test_the_etag_changes_when_the_task_changes(client: httpx.AsyncClient):
    task_id = await start_demo(client, steps=50, stepSeconds=0.1)
    url = f"/api/v1/tasks/{task_id}/status"
    etag = (await client.get(url)).headers["etag"]
    await client.post(f"/api/v1/tasks/{task_id}/cancel")
    changed = await client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["data"]["status"] == "cancelled"


async def test_result_of_a_completed_task_is_the_jobs_result(client: httpx.AsyncClient):
    task_id = await start_demo(client, steps=2, stepSeconds=0.05)
    done = await wait_for_status(client, task_id, {"completed"})
    assert done["resultUrl"] == f"/api/v1/tasks/{task_id}/result"
    response = await client.get(done["resultUrl"])
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"steps": 2, "message": "demo finished"}}


async def test_result_while_running_failed_or_cancelled_is_409_with_the_reason(
    client: httpx.AsyncClient,
):
    running = await start_demo(client, steps=50, stepSeconds=0.1)
    error = assert_error(
        await client.get(f"/api/v1/tasks/{running}/result"), 409, "TASK_NOT_FINISHED"
    )
    assert error["details"]["status"] in {"pending", "processing"}
    await client.post(f"/api/v1/tasks/{running}/cancel")
    assert_error(await client.get(f"/api/v1/tasks/{running}/result"), 409, "TASK_CANCELLED")

    failing = await start_demo(client, steps=3, stepSeconds=0.05, failAtStep=2)
    await wait_for_status(client, failing, {"failed"})
    error = assert_error(await client.get(f"/api/v1/tasks/{failing}/result"), 409, "TASK_FAILED")
    assert error["details"]["errorCode"] == "DEMO_FAILURE"


async def test_cancelling_a_finished_task_is_409_and_changes_nothing(client: httpx.AsyncClient):
    task_id = await start_demo(client, steps=1, stepSeconds=0)
    done = await wait_for_status(client, task_id, {"completed"})
    error = assert_error(await client.post(f"/api/v1/tasks/{task_id}/cancel"), 409, "TASK_FINISHED")
    assert error["details"]["status"] == "completed"
    after = (await client.get(f"/api/v1/tasks/{task_id}/status")).json()["data"]
    assert after == done


async def test_health_and_readiness(client: httpx.AsyncClient):
    assert (await client.get("/healthz")).json() == {"success": True, "data": {"status": "ok"}}
    ready = (await client.get("/readyz")).json()["data"]
    assert ready == {"status": "ready", "hubConnected": True}


async def test_the_same_idempotency_key_and_body_start_one_task(client: httpx.AsyncClient):
    headers = {"Idempotency-Key": f"demo-{uuid.uuid4()}"}
    body = {"steps": 2, "stepSeconds": 0.05}
    first = await client.post("/api/v1/demo/tasks", json=body, headers=headers)
    again = await client.post("/api/v1/demo/tasks", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["data"]["taskId"] == first.json()["data"]["taskId"]
    other = await client.post("/api/v1/demo/tasks", json={"steps": 3}, headers=headers)
    assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")
    fresh = await client.post("/api/v1/demo/tasks", json=body)
    assert fresh.json()["data"]["taskId"] != first.json()["data"]["taskId"]


async def test_an_unusable_idempotency_key_is_400(client: httpx.AsyncClient):
    response = await client.post(
        "/api/v1/demo/tasks", json={}, headers={"Idempotency-Key": "k" * 201}
    )
    assert_error(response, 400, "BAD_IDEMPOTENCY_KEY")


async def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(
    client: httpx.AsyncClient,
):
    before = await tasks_started(client)
    big = b'{"steps": 1, "pad": "' + b"x" * (1 << 20) + b'"}'
    declared = await client.post("/api/v1/demo/tasks", content=big)
    assert_error(declared, 413, "PAYLOAD_TOO_LARGE")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = await client.post("/api/v1/demo/tasks", content=chunks())
    assert "content-length" not in streamed.request.headers
    assert_error(streamed, 413, "PAYLOAD_TOO_LARGE")
    assert await tasks_started(client) == before


async def test_a_demo_longer_than_the_server_allows_is_a_422_on_its_pace(
    client: httpx.AsyncClient,
):
    response = await client.post("/api/v1/demo/tasks", json={"steps": 1000, "stepSeconds": 1})
    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert error["details"] == [
        {"field": "stepSeconds", "message": "steps × stepSeconds may be at most 300 s here"}
    ]
