"""Cross-origin use (`TASKSTREAM_CORS_ORIGINS`): preflights, grants on every answer
(errors and streams included), and the WebSocket's origin check. In a real browser, with
two origins: `tests/browser/test_cors.py`."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
import websockets

from jobs.infra.config import ConfigError, Settings
from tests.support import Proc, SseStream, WsClient, signup, start_demo

APP = "http://app.example:5173"  # the React app's origin, named
ELSEWHERE = "https://evil.example"


@pytest.fixture
def named(private: Callable[..., Proc]) -> Proc:
    """A web process that names two origins."""
    return private("web", TASKSTREAM_CORS_ORIGINS=f"{APP}, https://other.example")


def preflight(origin: str, method: str = "POST", headers: str = "") -> dict[str, str]:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    return asked | ({"Access-Control-Request-Headers": headers} if headers else {})


async def test_a_preflight_from_a_named_origin_is_granted_what_the_client_sends(named: Proc):
    asked = "authorization, content-type, idempotency-key, last-event-id, prefer"
    async with httpx.AsyncClient(base_url=named.url) as http:
        for path in ("/api/v1/auth/login", "/api/v1/demo/tasks", "/api/v1/tasks/x/events"):
            answer = await http.options(path, headers=preflight(APP, headers=asked))
            assert answer.status_code == 204, path
            assert answer.headers["access-control-allow-origin"] == APP
            allowed = answer.headers["access-control-allow-headers"].split(", ")
            assert set(asked.split(", ")) <= set(allowed)
            assert "POST" in answer.headers["access-control-allow-methods"]
            assert "access-control-allow-credentials" not in answer.headers
            assert answer.headers["vary"] == "Origin"


@pytest.mark.parametrize(
    ("asked", "why"),
    [
        (preflight(ELSEWHERE), "origin https://evil.example"),
        (preflight(APP, "PUT"), "method PUT"),
        (preflight(APP, headers="authorization, x-secret"), "headers x-secret"),
    ],
    ids=["origin", "method", "header"],
)
async def test_a_preflight_asking_for_what_is_not_allowed_is_a_403_with_why(
    named: Proc, asked: dict[str, str], why: str
):
    async with httpx.AsyncClient(base_url=named.url) as http:
        answer = await http.options("/api/v1/demo/tasks", headers=asked)
    assert answer.status_code == 403 and "access-control-allow-origin" not in answer.headers
    error = answer.json()["error"]
    assert error["code"] == "CORS_REFUSED" and why in error["message"]


async def test_every_answer_to_a_named_origin_carries_the_grant_errors_and_streams_too(
    named: Proc,
):
    async with httpx.AsyncClient(base_url=named.url, headers={"Origin": APP}) as http:
        user = await signup(http)
        http.headers.update(user.headers)
        task_id = await start_demo(http, steps=2, stepSeconds=0.05)
        answers = [
            await http.get(f"/api/v1/tasks/{task_id}/status"),
            await http.get("/api/v1/tasks/no-such-task/status"),  # 404
            await http.get("/api/v1/tasks", headers={"Authorization": "Bearer x"}),  # 401
        ]
        async with SseStream(http, f"/api/v1/tasks/{task_id}/events") as stream:
            answers.append(stream.response)
    assert [a.status_code for a in answers] == [200, 404, 401, 200]
    for answer in answers:
        assert answer.headers["access-control-allow-origin"] == APP
        exposed = answer.headers["access-control-expose-headers"].split(", ")
        assert {"Retry-After", "ETag", "Content-Length", "Content-Range"} <= set(exposed)


async def test_another_origin_gets_no_grant_and_the_default_grants_none(
    named: Proc, private: Callable[..., Proc]
):
    default = private("web")  # TASKSTREAM_CORS_ORIGINS unset
    async with httpx.AsyncClient() as http:
        theirs = await http.get(f"{named.url}/api/v1/tasks", headers={"Origin": ELSEWHERE})
        assert theirs.status_code == 401 and "access-control-allow-origin" not in theirs.headers
        asked = await http.options(f"{default.url}/api/v1/demo/tasks", headers=preflight(APP))
        assert asked.status_code == 405 and "access-control-allow-origin" not in asked.headers


async def test_a_websocket_from_another_origins_page_is_refused_before_it_opens(
    named: Proc, auth: dict[str, str]
):
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with WsClient(named.url, auth | {"Origin": ELSEWHERE}):
            pass
    answer = refused.value.response
    assert answer.status_code == 403
    assert json.loads(answer.body)["error"]["code"] == "ORIGIN_NOT_ALLOWED"
    for origin in (APP, named.url, None):  # named, its own, or not a browser
        headers = auth | ({"Origin": origin} if origin else {})
        async with WsClient(named.url, headers) as ws:
            await ws.send(type="subscribe", taskId="no-such-task")
            assert (await ws.next())["event"] == "error"


@pytest.mark.parametrize(
    "value", ["*", "https://app.example/path", "app.example", "ftp://app.example"]
)
def test_anything_but_exact_origins_is_refused_at_start_up(value: str):
    with pytest.raises(ConfigError, match="TASKSTREAM_CORS_ORIGINS names exact origins"):
        Settings.from_env({"TASKSTREAM_CORS_ORIGINS": value})


def test_origins_are_read_as_a_browser_sends_them():
    settings = Settings.from_env(
        {"TASKSTREAM_CORS_ORIGINS": "HTTPS://App.Example/, http://[::1]:3000"}
    )
    assert settings.cors_origins == ("https://app.example", "http://[::1]:3000")
