"""Every link a task-starting answer advertises is routed: followed with the starter's own
credentials (none, for a password-reset request), none of them answers 404."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import websockets

from tests.server.conftest import ANSWERS
from tests.server.test_exports import SIMULATION
from tests.support import WAIT, Proc, signup, wait_for_status

Start = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def plan_project(http: httpx.AsyncClient) -> str:
    """A project whose plan is written, so that it can be exported."""
    project_id = str(uuid.uuid4())
    body = ANSWERS | {"projectId": project_id}
    started = await http.post("/api/v1/business-plan/generate", json=body)
    await wait_for_status(http, started.json()["data"]["taskId"], {"completed"})
    return project_id


async def export(http: httpx.AsyncClient) -> httpx.Response:
    project_id = await plan_project(http)
    body = {"format": "md", "sections": ["executive_summary"]}
    return await http.post(f"/api/v1/projects/{project_id}/export", json=body)


STARTS: dict[str, Start] = {
    "signup": lambda http: http.post(
        "/api/v1/auth/signup",
        json={
            "email": f"{uuid.uuid4().hex[:10]}@example.com",
            "password": "correct horse",
            "name": "민지",
        },
    ),
    "demo": lambda http: http.post("/api/v1/demo/tasks", json={}),
    "business plan": lambda http: http.post("/api/v1/business-plan/generate", json=ANSWERS),
    "evaluation": lambda http: http.post(
        "/api/v1/evaluations",
        json={"plan": {"title": "빵집", "sections": [{"key": "market", "content": "직장인"}]}},
    ),
    "simulation": lambda http: http.post(
        f"/api/v1/projects/{uuid.uuid4()}/financial/simulate", json=SIMULATION
    ),
    "export": export,
    "resend": lambda http: http.post("/api/v1/auth/verify-email/resend"),
    "reset request": lambda http: http.post(
        "/api/v1/auth/password/reset-request", json={"email": "nobody@example.com"}
    ),
}


async def follow(http: httpx.AsyncClient, web: Proc, name: str, link: str) -> int:
    """The status code of following `link` as its kind of link is followed."""
    if name == "websocket":
        url = web.url.replace("http://", "ws://") + link
        signed_in = {"Authorization": http.headers["authorization"]}
        async with websockets.connect(url, additional_headers=signed_in, open_timeout=WAIT) as ws:
            await ws.close()
            return 101
    if name == "cancel":
        return (await http.post(link)).status_code
    async with http.stream("GET", link) as response:
        return response.status_code


@pytest.mark.parametrize("kind", STARTS)
async def test_every_advertised_link_of_a_starting_answer_is_routed(
    web: Proc, worker: Proc, kind: str
):
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)  # unverified, so that a resend can be asked for
        auth = {} if kind == "reset request" else user.headers
        http.headers.update(auth)
        started = await STARTS[kind](http)
        assert started.status_code == (201 if kind == "signup" else 202), started.text
        data: dict[str, Any] = started.json()["data"]
        if kind == "signup":  # the new account's task: followed as the new account
            http.headers["Authorization"] = f"Bearer {data['tokens']['accessToken']}"
        links: dict[str, str] = data["links"]
        assert {"status", "result", "cancel"} <= set(links)
        answers = {
            name: await follow(http, web, name, link)
            for name, link in sorted(links.items(), key=lambda item: item[0] == "cancel")
        }
        assert 404 not in answers.values(), answers
        assert answers["status"] == 200 and answers["cancel"] in {200, 409}, answers
