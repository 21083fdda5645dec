"""Per-user access: every task endpoint, stream and subscription checks the task's owner.

No token → 401; another user's task → 404, exactly as an unknown one; the owner → works.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import websockets

from tests.server.conftest import ANSWERS
from tests.support import (
    WAIT,
    Account,
    Proc,
    SseStream,
    WsClient,
    assert_no_gap,
    collect,
    signup,
    start_demo,
    wait_for_status,
)


@dataclass(frozen=True)
class Things:
    """The suite user's finished demo task, business plan and export."""

    task: str
    plan_task: str
    plan: str
    export: str


@pytest.fixture(scope="module")
async def things(web: Proc, worker: Proc, auth: dict[str, str]) -> Things:
    async with httpx.AsyncClient(base_url=web.url, headers=auth, timeout=WAIT) as http:
        task = await start_demo(http, steps=2, stepSeconds=0.01)
        generated = await http.post("/api/v1/business-plan/generate", json=ANSWERS)
        plan_task = generated.json()["data"]["taskId"]
        await wait_for_status(http, plan_task, {"completed"})
        plan = (await http.get(f"/api/v1/tasks/{plan_task}/result")).json()["data"]
        exported = await http.post(
            f"/api/v1/projects/{plan['projectId']}/export", json={"format": "md"}
        )
        export = exported.json()["data"]["taskId"]
        for task_id in (task, export):
            await wait_for_status(http, task_id, {"completed"})
        return Things(task, plan_task, plan["businessPlanId"], export)


READS = [
    "/api/v1/tasks/{task}/status",
    "/api/v1/tasks/{task}/result",
    "/api/v1/tasks/{task}/events",
    "/api/v1/events?tasks={task}",
    "/api/v1/business-plan/{plan_task}/status",
    "/api/v1/business-plan/{plan_task}/result",
    "/api/v1/business-plan/{plan}",
    "/api/v1/exports/{export}/status",
    "/api/v1/exports/{export}/download",
]


@pytest.mark.parametrize("path", READS)
async def test_reading_needs_a_token_and_only_the_owner_sees_the_task(
    client: httpx.AsyncClient, things: Things, stranger: Account, path: str
):
    url = path.format(**vars(things))
    anonymous = await client.get(url, headers={"Authorization": ""})
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["www-authenticate"] == "Bearer"
    foreign = await client.get(url, headers=stranger.headers)
    unknown = await client.get(url.replace(things_id(url, things), str(uuid.uuid4())))
    assert foreign.status_code == unknown.status_code == 404
    said = [{k: r.json()["error"][k] for k in ("code", "message")} for r in (foreign, unknown)]
    assert said[0] == said[1]
    owner = await client.get(url)
    assert owner.status_code == 200, owner.text


def things_id(url: str, things: Things) -> str:
    found: str = next(v for v in vars(things).values() if v in url)
    return found


async def test_cancel_is_the_owners_alone(client: httpx.AsyncClient, stranger: Account):
    task_id = await start_demo(client, steps=200, stepSeconds=0.05)
    url = f"/api/v1/tasks/{task_id}/cancel"
    assert (await client.post(url, headers={"Authorization": ""})).status_code == 401
    foreign = await client.post(url, headers=stranger.headers)
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "TASK_NOT_FOUND"
    assert (await client.get(f"/api/v1/tasks/{task_id}/status")).json()["data"][
        "status"
    ] != "cancelled"
    assert (await client.post(url)).status_code == 200


async def test_starting_work_needs_a_token_and_anothers_project_or_plan_is_not_found(
    client: httpx.AsyncClient, things: Things, stranger: Account
):
    plan = (await client.get(f"/api/v1/business-plan/{things.plan}")).json()["data"]
    project = plan["projectId"]
    starts = [
        ("/api/v1/demo/tasks", {}),
        ("/api/v1/business-plan/generate", ANSWERS | {"projectId": project}),
        ("/api/v1/evaluations", {"businessPlanId": things.plan}),
        (f"/api/v1/projects/{project}/export", {"format": "md"}),
        (
            f"/api/v1/projects/{project}/financial/simulate",
            {"revenue": {"initialUnits": 1, "unitPrice": 1}},
        ),
    ]
    for path, body in starts:
        assert (
            await client.post(path, json=body, headers={"Authorization": ""})
        ).status_code == 401
    for path, body in starts[1:]:
        response = await client.post(path, json=body, headers=stranger.headers)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] in {"PROJECT_NOT_FOUND", "PLAN_NOT_FOUND"}


async def test_a_websocket_needs_a_token_and_sees_only_its_users_tasks(
    web: Proc, things: Things, stranger: Account, auth: dict[str, str]
):
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with WsClient(web.url):
            pass
    assert refused.value.response.status_code == 401
    async with WsClient(web.url, stranger.headers) as ws:
        await ws.send(type="subscribe", taskId=things.task)
        frame = await ws.next()
        assert (frame["event"], frame["error"]["code"]) == ("error", "TASK_NOT_FOUND")
        await ws.send(type="cancel", taskId=things.task)
        assert (await ws.next())["error"]["code"] == "TASK_NOT_FOUND"
    async with WsClient(web.url, auth) as ws:
        await ws.send(type="subscribe", taskId=things.task)
        frames = await ws.until("unsubscribed", things.task)
        assert frames[0]["event"] == "subscribed" and frames[1]["data"]["status"] == "completed"


async def test_a_stream_ticket_opens_one_stream_once(
    client: httpx.AsyncClient, web: Proc, things: Things, stranger: Account
):
    anonymous = await client.post("/api/v1/stream-tickets", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    issued = await client.post("/api/v1/stream-tickets")
    assert issued.status_code == 201
    ticket = issued.json()["data"]["ticket"]
    url = f"/api/v1/tasks/{things.task}/events?ticket={ticket}"
    async with httpx.AsyncClient(base_url=web.url) as browser:  # no Authorization header
        events = await collect(browser, url)
        assert events[-1].data["status"] == "completed"
        spent = await browser.get(url)
        assert spent.status_code == 401 and spent.json()["error"]["code"] == "INVALID_TICKET"
        theirs = (await browser.post("/api/v1/stream-tickets", headers=stranger.headers)).json()
        other = await browser.get(
            f"/api/v1/tasks/{things.task}/events?ticket={theirs['data']['ticket']}"
        )
        assert other.status_code == 404
    ws_ticket = (await client.post("/api/v1/stream-tickets")).json()["data"]["ticket"]
    ws_url = web.url.replace("http://", "ws://") + f"/api/v1/ws?ticket={ws_ticket}"
    async with websockets.connect(ws_url) as socket:
        await socket.send(json.dumps({"type": "subscribe", "taskId": things.task}))
        assert json.loads(await socket.recv())["event"] == "subscribed"


async def short_lived(private: Any) -> tuple[Proc, Account]:
    """A web process whose access tokens last 2 s, a worker, and a user of theirs."""
    web = private("web", TASKSTREAM_ACCESS_TOKEN_SECONDS="2")
    private("worker")
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        return web, await signup(http)


async def test_an_expiring_token_ends_the_stream_with_reauthenticate_then_it_resumes(
    private: Any, redis: Any
):
    web, user = await short_lived(private)
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT, headers=user.headers) as http:
        task_id = await start_demo(http, steps=35, stepSeconds=0.1)
        async with SseStream(http, f"/api/v1/tasks/{task_id}/events") as sse:
            first = await sse.rest()
        assert first[-1].event == "reauthenticate" and first[-1].id is None
        assert first[-1].data["code"] == "TOKEN_EXPIRED"
        still = await http.get(f"/api/v1/tasks/{task_id}/status")
        assert still.status_code == 401 and still.json()["error"]["code"] == "TOKEN_EXPIRED"
        # as a client does: refresh, resume after the last id, until the task ends
        received, refresh, events = [e.id for e in first if e.id], user.refresh, first
        while events[-1].event == "reauthenticate":
            answer = await http.post("/api/v1/auth/refresh", json={"refreshToken": refresh})
            tokens = answer.json()["data"]["tokens"]
            refresh = tokens["refreshToken"]
            http.headers["Authorization"] = f"Bearer {tokens['accessToken']}"
            resume = {"Last-Event-ID": received[-1]}
            events = await collect(http, f"/api/v1/tasks/{task_id}/events", headers=resume)
            received += [e.id for e in events if e.id]
        assert events[-1].event == "completed"
        await assert_no_gap(redis, task_id, received)


async def test_an_expiring_token_closes_the_websocket_with_4401(private: Any):
    web, user = await short_lived(private)
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT, headers=user.headers) as http:
        task_id = await start_demo(http, steps=35, stepSeconds=0.1)
        async with WsClient(web.url, user.headers) as ws:
            await ws.send(type="subscribe", taskId=task_id)
            frames = []
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    frames.append(await ws.next())
        assert frames[-1] == {"event": "reauthenticate", "code": "TOKEN_EXPIRED"}
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_the_task_list_is_the_callers_own_filtered_and_paged(
    web: Proc, worker: Proc, stranger: Account
):
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)
        http.headers.update(user.headers)
        done = await start_demo(http, steps=1, stepSeconds=0.01)
        failed = await start_demo(http, steps=2, stepSeconds=0.01, failAtStep=1)
        for task_id, status in ((done, "completed"), (failed, "failed")):
            await wait_for_status(http, task_id, {status})
        mail = user.signup_task
        listed = (await http.get("/api/v1/tasks")).json()["data"]
        assert [t["taskId"] for t in listed["tasks"]] == [failed, done, mail]
        assert listed["total"] == 3
        only = (await http.get("/api/v1/tasks?status=failed,cancelled")).json()["data"]
        assert [t["taskId"] for t in only["tasks"]] == [failed]
        demos = (await http.get("/api/v1/tasks?kind=demo&limit=1&offset=1")).json()["data"]
        assert ([t["taskId"] for t in demos["tasks"]], demos["total"]) == ([done], 2)
        theirs = (await http.get("/api/v1/tasks", headers=stranger.headers)).json()["data"]
        assert not {t["taskId"] for t in theirs["tasks"]} & {done, failed, mail}
        huge = "9" * 5000  # past Python's 4,300-digit int()
        for query in ("status=lost", "kind=poetry", "limit=0", "limit=101", "offset=-1",
                      f"limit={huge}", f"offset={huge}"):  # fmt: skip
            bad = await http.get(f"/api/v1/tasks?{query}")
            assert bad.status_code == 422, query
        assert (await http.get("/api/v1/tasks", headers={"Authorization": ""})).status_code == 401
