"""Security headers on the page, the static files, the API (errors included) and streams."""

from __future__ import annotations

import httpx
import pytest

from server.headers import HEADERS
from tests.support import Proc, SseStream, start_demo

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
