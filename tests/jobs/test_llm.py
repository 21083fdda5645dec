"""Gemini's transport failures, through the real `google-genai` SDK: each is transient with
a code of its own, retried with the attempt visible, then failed with that code.

The first tests call the SDK in-process against `BrokenGemini`; they fail if the SDK ever
raises what `jobs/language/gemini.py` does not recognise (as when it moved from httpx to httpx2).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from pydantic import BaseModel

from jobs.errors import TransientError
from jobs.infra.config import GeminiSettings
from jobs.language.gemini import GeminiModel
from jobs.language.model import Prompt
from tests.fake_gemini import BrokenGemini
from tests.server.conftest import ANSWERS, model_web
from tests.support import WAIT, Proc, collect

CODES = {
    "refuse": "UPSTREAM_UNREACHABLE",
    "hang": "UPSTREAM_TIMEOUT",
    "reset": "UPSTREAM_DISCONNECTED",
    "cut": "UPSTREAM_DISCONNECTED",
    "unfinished": "UPSTREAM_INCOMPLETE",
}
TIMEOUT_S = 0.5


class Rubric(BaseModel):
    score: int


@pytest.fixture(scope="module")
def broken() -> Iterator[BrokenGemini]:
    server = BrokenGemini()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def model(broken: BrokenGemini) -> AsyncIterator[GeminiModel]:
    settings = GeminiSettings(api_key="test-key", base_url=broken.url, timeout_s=TIMEOUT_S)
    gemini = GeminiModel(settings)
    yield gemini
    await gemini.aclose()


PROMPT = Prompt("write", offline=dict)


@pytest.mark.parametrize(("mode", "code"), CODES.items(), ids=CODES)
async def test_a_streamed_answer_failing_in_transport_is_transient_with_its_code(
    broken: BrokenGemini, model: GeminiModel, mode: str, code: str
):
    broken.script(mode)
    received: list[str] = []
    with pytest.raises(TransientError) as raised:
        async for text in model.stream_text(PROMPT):
            received.append(text)
    assert raised.value.code == code, raised.value
    assert broken.requests == (0 if mode == "refuse" else 1)
    if mode in {"cut", "unfinished"}:  # the text before the break came through
        assert "".join(received) == "## [executive"


@pytest.mark.parametrize("mode", ["refuse", "hang", "reset", "cut"])
async def test_a_json_answer_failing_in_transport_is_transient_with_its_code(
    broken: BrokenGemini, model: GeminiModel, mode: str
):
    broken.script(mode)
    with pytest.raises(TransientError) as raised:
        await model.json(PROMPT, Rubric)
    assert raised.value.code == CODES[mode], raised.value


@pytest.fixture(scope="module")
def outage_web(
    spawn: Callable[..., Proc], env: dict[str, str], broken: BrokenGemini,
    request: pytest.FixtureRequest,
) -> Iterator[Proc]:  # fmt: skip
    """Processes whose Gemini is `broken`, and which give up on it after `TIMEOUT_S`."""
    with model_web(spawn, env, request, broken.url, GEMINI_TIMEOUT_SECONDS=str(TIMEOUT_S)) as web:
        yield web


@pytest.fixture
async def http(outage_web: Proc, auth: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=outage_web.url, headers=auth, timeout=WAIT) as client:
        yield client


START = {
    "business_plan": ("/api/v1/business-plan/generate", ANSWERS),
    "evaluation": (
        "/api/v1/evaluations",
        {"plan": {"title": "동네빵집", "sections": [{"key": "market", "content": "출근길"}]}},
    ),
}
CASES = [
    *(("business_plan", mode) for mode in CODES),
    *(("evaluation", mode) for mode in ("refuse", "hang", "cut")),
]


@pytest.mark.parametrize(("kind", "mode"), CASES, ids=[f"{k}-{m}" for k, m in CASES])
async def test_an_upstream_outage_is_retried_visibly_then_fails_with_its_code(
    http: httpx.AsyncClient, broken: BrokenGemini, kind: str, mode: str
):
    broken.script(mode)
    path, body = START[kind]
    started = await http.post(path, json=body)
    assert started.status_code == 202, started.text
    task_id = started.json()["data"]["taskId"]
    events = await collect(http, f"/api/v1/tasks/{task_id}/events")
    retries = [e.data for e in events if e.data.get("currentStage") == "retrying"]
    assert retries, [e.data for e in events]
    assert {(r["errorCode"], r["status"]) for r in retries} == {(CODES[mode], "pending")}
    assert [r["attempt"] for r in retries] == [1, 2]
    end = events[-1].data
    assert (events[-1].event, end["errorCode"], end["attempt"]) == ("failed", CODES[mode], 3)
    assert "AI model" in end["errorMessage"] and "tried 3 times" in end["errorMessage"]
    assert "INTERNAL_ERROR" not in {e.data.get("errorCode") for e in events}
    assert broken.requests == (0 if mode == "refuse" else 3)
