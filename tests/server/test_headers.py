"""Security headers on the page, the static files, the API (errors included) and streams."""

from __future__ import annotations

import json

import httpx
import pytest
import websockets
from redis.asyncio import Redis

from jobs.record import keys
from server.headers import HEADERS
from tests.support import Proc, SseStream, WsClient, start_demo, wait_for_status

EXPECTED = {name.decode(): value.decode() for name, value in HEADERS}


def assert_secured(response: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get_list(name) == [value], name
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    "path", ["/", "/verify-email", "/docs", "/static/js/taskstream.js", "/api/v1/tasks",
             "/healthz", "/openapi.json", "/no/such/page"],
)  # fmt: skip
async def test_every_answer_carries_the_security_headers(web: Proc, path: str):
    async with httpx.AsyncClient(base_url=web.url) as http:
        assert_secured(await http.get(path))


async def test_a_stream_carries_them_too(client: httpx.AsyncClient):
    task_id = await start_demo(client, steps=2, stepSeconds=0.01)
    async with SseStream(client, f"/api/v1/tasks/{task_id}/events") as stream:
        assert_secured(stream.response)


async def test_an_unexpected_500_carries_them_too(client: httpx.AsyncClient, redis: Redis):
    """Starlette's own error answer sits outside its middleware: a stored result that is
    not JSON (a ValueError: nothing any handler of ours expects) makes one."""
    task_id = await start_demo(client, steps=1, stepSeconds=0.01)
    await wait_for_status(client, task_id, {"completed"})
    await redis.set(keys.result(task_id), "{not json")
    response = await client.get(f"/api/v1/tasks/{task_id}/result")
    assert response.status_code == 500 and response.json()["error"]["code"] == "INTERNAL_ERROR"
    assert_secured(response)


async def test_a_refused_websocket_handshake_carries_them_too(web: Proc):
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with WsClient(web.url):
            pass
    answer = refused.value.response
    assert answer.status_code == 401
    assert json.loads(answer.body or b"{}")["error"]["code"] == "UNAUTHORIZED"
    for name, value in EXPECTED.items():
        assert answer.headers.get_all(name) == [value], name
