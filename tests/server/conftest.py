from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.fake_gemini import FakeGemini
from tests.support import WAIT, Proc

ANSWERS = {
    "projectName": "동네빵집",
    "industry": "식품 소매",
    "targetCustomers": "출근길 직장인",
    "problem": "아침을 거르는 직장인이 많다",
    "solution": "역 앞 키오스크에서 빵 정기 구독",
    "businessModel": "월 구독료",
    "competition": "편의점, 프랜차이즈 빵집",
    "team": "제빵사 1명, 개발자 1명",
    "fundingNeed": "5천만 원",
}


@pytest.fixture(scope="session")
def gemini() -> Iterator[FakeGemini]:
    server = FakeGemini()
    server.start()
    yield server
    server.stop()


@contextmanager
def model_web(
    spawn: Callable[..., Proc], env: dict[str, str], request: pytest.FixtureRequest,
    gemini_url: str, **settings: str,
) -> Iterator[Proc]:  # fmt: skip
    """A web process and a worker whose Gemini is at `gemini_url`, on a queue of their own."""
    extra = {
        **env,
        "TASKSTREAM_QUEUE": f"taskstream:test:{request.module.__name__}",
        "GEMINI_API_KEY": "test-key",
        "GEMINI_BASE_URL": gemini_url,
        "TASKSTREAM_RETRY_BACKOFF_BUSINESS_PLAN": "0.2",
        "TASKSTREAM_RETRY_BACKOFF_EVALUATION": "0.2",
        **settings,
    }
    web = spawn("web", extra)
    worker = spawn("worker", extra)
    try:
        yield web
    finally:
        worker.stop()
        web.stop()


@pytest.fixture(scope="module")
def gemini_web(
    spawn: Callable[..., Proc], env: dict[str, str], gemini: FakeGemini,
    request: pytest.FixtureRequest,
) -> Iterator[Proc]:  # fmt: skip
    """Processes whose model is the fake Gemini, with short per-kind timeouts."""
    timeouts = {"TASKSTREAM_TIMEOUT_BUSINESS_PLAN": "3", "TASKSTREAM_TIMEOUT_EVALUATION": "3"}
    with model_web(spawn, env, request, gemini.url, GEMINI_TIMEOUT_SECONDS="30", **timeouts) as web:
        yield web


@pytest.fixture
async def model_client(gemini_web: Proc, auth: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gemini_web.url, headers=auth, timeout=WAIT) as http:
        yield http
