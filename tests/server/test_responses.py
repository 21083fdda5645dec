"""Hostile input: whatever a client sends, the answer is a 4xx envelope, never a 500, and
nothing is started by a refused request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from server.responses import MAX_JSON_DEPTH
from tests.server.conftest import ANSWERS
from tests.server.test_tasks_api import assert_error
from tests.support import Proc, SseStream, signup, sse_events, start_demo


def nested(depth: int) -> str:
    return '{"steps": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


BODIES = {
    "nested-1000-deep": nested(1000),
    "nested-one-too-deep": nested(MAX_JSON_DEPTH + 1),
    "a-5000-digit-number": '{"steps": ' + "9" * 5000 + "}",
    "a-number-out-of-range": '{"steps": 1e999}',
    "nan": '{"steps": NaN}',
    "infinity": '{"stepSeconds": -Infinity}',
    "not-utf-8": b'{"steps": "\xff"}',
}


@pytest.fixture
async def http(web: Proc, worker: Proc) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in user with no task yet, so that anything started shows."""
    async with httpx.AsyncClient(base_url=web.url, timeout=10) as http:
        http.headers.update((await signup(http)).headers)
        yield http


async def tasks_of(http: httpx.AsyncClient, kind: str) -> int:
    total: int = (await http.get("/api/v1/tasks", params={"kind": kind})).json()["data"]["total"]
    return total


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES)
async def test_hostile_json_is_a_422_and_starts_nothing(http: httpx.AsyncClient, body):
    response = await http.post("/api/v1/demo/tasks", content=body)
    assert_error(response, 422, "INVALID_JSON")
    assert await tasks_of(http, "demo") == 0


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES)
async def test_hostile_json_signed_out_is_a_422_too(web: Proc, body):
    async with httpx.AsyncClient(base_url=web.url) as http:
        assert_error(await http.post("/api/v1/auth/login", content=body), 422, "INVALID_JSON")


async def test_json_as_deep_as_allowed_is_parsed_then_validated(http: httpx.AsyncClient):
    response = await http.post("/api/v1/demo/tasks", content=nested(MAX_JSON_DEPTH))
    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "steps"


@pytest.mark.parametrize("value", ["²", "٣", "1²", "-1", "1e3", ""])
async def test_a_number_in_the_query_is_ascii_digits_or_a_422(http: httpx.AsyncClient, value: str):
    response = await http.get("/api/v1/tasks", params={"limit": value})
    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "limit"


async def test_a_last_event_id_of_unicode_digits_is_no_id_at_all(http: httpx.AsyncClient):
    task_id = await start_demo(http, steps=2, stepSeconds=0.01)
    url = f"/api/v1/tasks/{task_id}/events"
    for last_id in ("²-1", "1-²"):
        headers = {b"Last-Event-ID": last_id.encode()}  # as bytes: httpx sends no other non-ASCII
        async with http.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200
            assert (await anext(sse_events(response))).event == "status"  # from the start
    async with SseStream(http, "/api/v1/events?lastEventId=²|") as stream:
        assert (await stream.next()).event == "status"


async def test_prefer_wait_of_unicode_digits_is_ignored_and_starts_one_task(
    http: httpx.AsyncClient,
):
    headers = {b"Prefer": "wait=²".encode()}
    response = await http.post("/api/v1/business-plan/generate", json=ANSWERS, headers=headers)
    assert response.status_code == 202, response.text
    assert "preference-applied" not in response.headers
    assert await tasks_of(http, "business_plan") == 1
