"""Evaluation: a plan scored on a rubric, as JSON checked against its schema."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from jobs.kinds.evaluation import CRITERIA
from tests.fake_gemini import Answer, Failure, FakeGemini
from tests.server.conftest import ANSWERS
from tests.support import collect, wait_for_status

BASE = "/api/v1/evaluations"
INLINE = {"title": "동네빵집", "sections": [{"key": "market", "content": "출근길 직장인"}]}


def rubric(**overrides: Any) -> str:
    scores = [{"criterion": c, "score": 70 + i, "reasons": f"{c} 근거"}
              for i, c in enumerate(CRITERIA)]  # fmt: skip
    return json.dumps({"scores": scores, "overallFeedback": "좋은 출발입니다.", **overrides})


async def evaluate(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await http.post(BASE, json=body)
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert data["evaluationId"] == data["taskId"]
    assert data["links"]["result"] == f"{BASE}/{data['taskId']}/result"
    evaluation_id: str = data["taskId"]
    return evaluation_id


async def stored_plan(http: httpx.AsyncClient) -> str:
    response = await http.post("/api/v1/business-plan/generate", json=ANSWERS)
    task_id = response.json()["data"]["taskId"]
    await wait_for_status(http, task_id, {"completed"})
    plan = (await http.get(f"/api/v1/business-plan/{task_id}/result")).json()["data"]
    plan_id: str = plan["businessPlanId"]
    return plan_id


async def test_an_offline_evaluation_of_a_stored_plan_scores_every_criterion(
    client: httpx.AsyncClient,
):
    plan_id = await stored_plan(client)
    evaluation_id = await evaluate(client, {"businessPlanId": plan_id})
    events = await collect(client, f"/api/v1/tasks/{evaluation_id}/events")
    assert events[-1].event == "completed"
    result = (await client.get(f"{BASE}/{evaluation_id}/result")).json()["data"]
    assert [s["criterion"] for s in result["scores"]] == list(CRITERIA)
    assert all(0 <= s["score"] <= 100 and s["reasons"] for s in result["scores"])
    assert result["businessPlanId"] == plan_id and result["offline"] is True
    status = (await client.get(f"{BASE}/{evaluation_id}/status")).json()["data"]
    assert status["status"] == "completed"


async def test_gemini_scores_an_inline_plan_as_json_with_a_schema(
    model_client: httpx.AsyncClient, gemini: FakeGemini
):
    gemini.script(Answer(rubric()))
    evaluation_id = await evaluate(model_client, {"plan": INLINE})
    await wait_for_status(model_client, evaluation_id, {"completed", "failed"})
    result = (await model_client.get(f"{BASE}/{evaluation_id}/result")).json()["data"]
    assert [s["score"] for s in result["scores"]] == [70, 71, 72, 73, 74]
    assert result["overallScore"] == 72
    assert result["overallFeedback"] == "좋은 출발입니다."
    request = gemini.requests[0]
    assert request["action"].endswith(":generateContent")
    config = request["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "scores" in json.dumps(config["responseSchema"])
    assert config["maxOutputTokens"] == 8192  # the longest answer a request may cost
    assert "출근길 직장인" in request["body"]["contents"][0]["parts"][0]["text"]


@pytest.mark.parametrize(
    "answer",
    ['{"scores": [', rubric(scores=[]), rubric(scores=[{"criterion": "market", "score": 900,
                                                        "reasons": ""}])],
    ids=["not-json", "criteria-missing", "score-out-of-range"],
)  # fmt: skip
async def test_malformed_json_from_the_model_fails_clearly_and_stores_nothing(
    model_client: httpx.AsyncClient, gemini: FakeGemini, answer: str
):
    gemini.script(Answer(answer))
    evaluation_id = await evaluate(model_client, {"plan": INLINE})
    failed = await wait_for_status(model_client, evaluation_id, {"completed", "failed"})
    assert failed["errorCode"] == "MALFORMED_MODEL_OUTPUT"
    response = await model_client.get(f"{BASE}/{evaluation_id}/result")
    assert response.json()["error"]["code"] == "TASK_FAILED"


async def test_a_rate_limited_model_is_retried_then_answers(
    model_client: httpx.AsyncClient, gemini: FakeGemini
):
    gemini.script(Failure(429, "quota"), Answer(rubric()))
    evaluation_id = await evaluate(model_client, {"plan": INLINE})
    done = await wait_for_status(model_client, evaluation_id, {"completed", "failed"})
    assert (done["status"], done["attempt"]) == ("completed", 2)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "VALIDATION_ERROR"),
        ({"businessPlanId": str(uuid.uuid4()), "plan": INLINE}, 422, "VALIDATION_ERROR"),
        ({"plan": {"title": "x", "sections": [{"key": "weather", "content": ""}]}}, 422,
         "VALIDATION_ERROR"),
        ({"businessPlanId": str(uuid.uuid4())}, 404, "PLAN_NOT_FOUND"),
        ({"businessPlanId": "../etc"}, 404, "PLAN_NOT_FOUND"),
    ],
    ids=["neither", "both", "unknown-section", "unknown-plan", "malformed-plan-id"],
)  # fmt: skip
async def test_a_bad_evaluation_request_is_refused_in_the_envelope(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, code: str
):
    response = await client.post(BASE, json=body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
