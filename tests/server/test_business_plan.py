"""Business-plan generation: streamed live, stored whole, through the real Gemini SDK."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from jobs.plans import SECTION_KEYS, PlanStore
from jobs.record.tasks import TaskStore
from tests.fake_gemini import Failure, FakeGemini, Stream
from tests.server.conftest import ANSWERS
from tests.support import (
    Proc,
    SseStream,
    collect,
    start_demo,
    wait_for_status,
    wait_for_task,
)

BASE = "/api/v1/business-plan"


def model_markdown() -> list[str]:
    """A plan as the model would stream it: headings with keys, in chunks."""
    text = "".join(f"## [{key}] 제목 {key}\n\n{key} 내용입니다.\n\n" for key in SECTION_KEYS)
    return [text[i : i + 50] for i in range(0, len(text), 50)]


async def generate(http: httpx.AsyncClient, **overrides: Any) -> str:
    response = await http.post(f"{BASE}/generate", json={**ANSWERS, **overrides})
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert data["status"] == "pending" and data["estimatedTime"] > 0
    assert data["links"]["status"] == f"{BASE}/{data['taskId']}/status"
    task_id: str = data["taskId"]
    return task_id


async def test_an_offline_plan_streams_its_text_then_is_stored_whole(client: httpx.AsyncClient):
    task_id = await generate(client, language="en")
    events = await collect(client, f"/api/v1/tasks/{task_id}/events")
    assert events[-1].event == "completed"
    text = "".join(e.data["text"] for e in events if e.event == "partial")
    stages = [e.data["currentStage"] for e in events if e.data["currentStage"]]
    assert stages.index("generating") < stages.index("formatting")
    plan = (await client.get(f"{BASE}/{task_id}/result")).json()["data"]
    assert plan["offline"] is True
    assert plan["markdown"] == text
    assert [s["key"] for s in plan["sections"]] == list(SECTION_KEYS)
    assert plan["sections"][1]["content"] == ANSWERS["problem"]
    stored = await client.get(f"{BASE}/{plan['businessPlanId']}")
    assert stored.json()["data"] == plan
    status = (await client.get(f"{BASE}/{task_id}/status")).json()["data"]
    assert (status["status"], status["progress"]) == ("completed", 100)


async def test_a_plan_streamed_by_gemini_reaches_the_client_in_order_and_is_stored(
    model_client: httpx.AsyncClient, gemini: FakeGemini
):
    chunks = model_markdown()
    gemini.script(Stream(chunks, delay=0.01))
    project_id = str(uuid.uuid4())
    task_id = await generate(model_client, projectId=project_id)
    events = await collect(model_client, f"/api/v1/tasks/{task_id}/events")
    partials = [e for e in events if e.event == "partial"]
    assert "".join(e.data["text"] for e in partials) == "".join(chunks)
    offsets = [e.data["offset"] for e in partials]
    assert offsets == sorted(offsets) and offsets[0] == 0
    progress = [e.data["progress"] for e in events]
    assert progress == sorted(progress)
    plan = (await model_client.get(f"{BASE}/{task_id}/result")).json()["data"]
    assert (plan["offline"], plan["projectId"]) == (False, project_id)
    assert plan["sections"][3] == {"key": "market", "title": "시장 분석",
                                   "content": "market 내용입니다."}  # fmt: skip
    prompt = gemini.requests[0]["body"]["contents"][0]["parts"][0]["text"]
    assert ANSWERS["problem"] in prompt and "## [milestones]" in prompt
    assert gemini.requests[0]["action"].endswith(":streamGenerateContent")
    assert gemini.requests[0]["body"]["generationConfig"]["maxOutputTokens"] == 8192


async def test_a_client_joining_mid_generation_sees_the_text_so_far_then_the_rest(
    model_client: httpx.AsyncClient, gemini: FakeGemini
):
    chunks = model_markdown()
    gemini.script(Stream(chunks, delay=0.05))
    task_id = await generate(model_client)
    await wait_for_task(model_client, task_id, lambda data: bool(data["textLength"]))
    async with SseStream(model_client, f"/api/v1/tasks/{task_id}/events") as stream:
        first = await stream.next()
        rest = await stream.rest()
    so_far = first.data["text"]
    assert so_far and "".join(chunks).startswith(so_far)
    later = [e for e in rest if e.event == "partial"]
    assert later[0].data["offset"] == len(so_far.encode())
    assert so_far + "".join(e.data["text"] for e in later) == "".join(chunks)


async def test_a_503_is_retried_and_the_retry_is_visible(
    model_client: httpx.AsyncClient, gemini: FakeGemini
):
    gemini.script(Failure(503, "overloaded"), Stream(model_markdown()))
    task_id = await generate(model_client)
    events = await collect(model_client, f"/api/v1/tasks/{task_id}/events")
    retrying = [e.data for e in events if e.data["currentStage"] == "retrying"]
    assert retrying and retrying[0]["errorCode"] == "UPSTREAM_UNAVAILABLE"
    assert (events[-1].event, events[-1].data["attempt"]) == ("completed", 2)
    assert len(gemini.requests) == 2


async def test_a_400_fails_the_task_without_a_retry(
    model_client: httpx.AsyncClient, gemini: FakeGemini
):
    gemini.script(Failure(400, "bad request"), Stream(model_markdown()))
    task_id = await generate(model_client)
    failed = await wait_for_status(model_client, task_id, {"failed", "completed"})
    assert (failed["status"], failed["errorCode"], failed["attempt"]) == (
        "failed", "UPSTREAM_REJECTED", 1,
    )  # fmt: skip
    assert "400" in failed["errorMessage"]
    assert len(gemini.requests) == 1


async def test_a_model_that_stalls_past_the_timeout_fails_with_timeout(
    model_client: httpx.AsyncClient, gemini: FakeGemini
):
    gemini.script(Stream(model_markdown(), stall_after=3))
    task_id = await generate(model_client)
    failed = await wait_for_status(model_client, task_id, {"failed", "completed"})
    assert (failed["status"], failed["errorCode"]) == ("failed", "TIMEOUT")
    assert gemini.disconnected.wait(10)  # the stalled upstream request was dropped


async def test_text_without_the_plans_sections_fails_and_stores_no_plan(
    model_client: httpx.AsyncClient, gemini: FakeGemini, store: TaskStore
):
    gemini.script(Stream(["I cannot help with that."]))
    project_id = str(uuid.uuid4())
    task_id = await generate(model_client, projectId=project_id)
    failed = await wait_for_status(model_client, task_id, {"failed", "completed"})
    assert failed["errorCode"] == "MALFORMED_MODEL_OUTPUT"
    assert await PlanStore(store.redis).latest(project_id) is None


async def test_cancelling_during_generation_stops_the_upstream_stream(
    model_client: httpx.AsyncClient, gemini: FakeGemini, store: TaskStore
):
    gemini.script(Stream(model_markdown() * 10, delay=0.1))
    project_id = str(uuid.uuid4())
    task_id = await generate(model_client, projectId=project_id)
    await wait_for_task(model_client, task_id, lambda data: bool(data["textLength"]))
    cancelled = await model_client.post(f"{BASE}/{task_id}/cancel")
    assert cancelled.json()["data"]["status"] == "cancelled"
    assert gemini.disconnected.wait(10)
    assert await PlanStore(store.redis).latest(project_id) is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"projectName": None}, "projectName"),
        ({"problem": "   "}, "problem"),
        ({"industry": "x" * 201}, "industry"),
        ({"language": "fr"}, "language"),
        ({"projectId": "not-a-uuid"}, "projectId"),
        ({"colour": "red"}, "colour"),
    ],
    ids=["missing", "blank", "too-long", "language", "project-id", "unknown-field"],
)
async def test_bad_answers_are_422_with_the_field_and_start_nothing(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
):
    body = {k: v for k, v in {**ANSWERS, **change}.items() if v is not None}
    response = await client.post(f"{BASE}/generate", json=body)
    assert response.status_code == 422
    assert field in [d["field"] for d in response.json()["error"]["details"]]


async def test_another_kinds_task_and_an_unknown_plan_are_404(client: httpx.AsyncClient):
    demo = await start_demo(client, steps=1, stepSeconds=0)
    response = await client.get(f"{BASE}/{demo}/status")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "TASK_NOT_FOUND")
    response = await client.get(f"{BASE}/{uuid.uuid4()}")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "PLAN_NOT_FOUND")


async def test_prefer_wait_answers_with_the_plan_when_it_is_done_in_time(
    client: httpx.AsyncClient,
):
    response = await client.post(f"{BASE}/generate", json=ANSWERS, headers={"Prefer": "wait=15"})
    assert response.status_code == 200
    assert response.headers["preference-applied"] == "wait=15"
    plan = response.json()["data"]
    assert plan["title"] == ANSWERS["projectName"] and len(plan["sections"]) == 12


async def test_prefer_wait_too_short_gives_the_usual_202(client: httpx.AsyncClient):
    response = await client.post(f"{BASE}/generate", json=ANSWERS, headers={"Prefer": "wait=1"})
    assert response.status_code == 202
    assert "preference-applied" not in response.headers


async def test_prefer_wait_is_ignored_with_the_feature_flag_off(
    private: Callable[..., Proc], auth: dict[str, str]
):
    web = private("web", TASKSTREAM_SYNC_WAIT_MAX_SECONDS="0")
    async with httpx.AsyncClient(base_url=web.url, headers=auth) as http:
        response = await http.post(f"{BASE}/generate", json=ANSWERS, headers={"Prefer": "wait=15"})
    assert response.status_code == 202
