"""A login that ends (logout, password reset, a stolen refresh token used twice) ends its
open streams at once: every SSE form, tickets included, and the WebSocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import websockets

from tests.server.test_auth import RESET, link_in
from tests.smtp import MailServer
from tests.support import (
    WAIT,
    Account,
    Proc,
    SseStream,
    WsClient,
    signup,
    sse_events,
    start_demo,
)

AUTH = "/api/v1/auth"


async def login(http: httpx.AsyncClient, user: Account) -> dict[str, str]:
    """A second login of `user`: its own token family."""
    answer = await http.post(f"{AUTH}/login", json={"email": user.email, "password": user.password})
    tokens: dict[str, str] = answer.json()["data"]["tokens"]
    return tokens


async def logout(http: httpx.AsyncClient, tokens: dict[str, str], smtp: MailServer, user: Account):
    headers = {"Authorization": f"Bearer {tokens['accessToken']}"}
    assert (await http.post(f"{AUTH}/logout", headers=headers)).status_code == 200


async def reset_password(
    http: httpx.AsyncClient, tokens: dict[str, str], smtp: MailServer, user: Account
):
    await http.post(f"{AUTH}/password/reset-request", json={"email": user.email})
    _, token = link_in(await smtp.mail_for(user.email, about=RESET))
    new = {"token": token, "password": "a brand new one"}
    assert (await http.post(f"{AUTH}/password/reset", json=new)).status_code == 200


async def reuse_refresh_token(
    http: httpx.AsyncClient, tokens: dict[str, str], smtp: MailServer, user: Account
):
    body = {"refreshToken": tokens["refreshToken"]}
    assert (await http.post(f"{AUTH}/refresh", json=body)).status_code == 200
    reused = await http.post(f"{AUTH}/refresh", json=body)
    assert reused.json()["error"]["code"] == "REFRESH_TOKEN_REUSED"


End = Callable[[httpx.AsyncClient, dict[str, str], MailServer, Account], Awaitable[None]]
ENDS: dict[str, End] = {"logout": logout, "reset": reset_password, "reuse": reuse_refresh_token}


@pytest.fixture
async def http(web: Proc, worker: Proc) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as client:
        yield client


async def stream_url(http: httpx.AsyncClient, form: str, task_id: str, auth: dict[str, str]):
    if form == "one":
        return f"/api/v1/tasks/{task_id}/events"
    if form == "many":
        other = await start_demo(http, steps=1)
        return f"/api/v1/events?tasks={task_id},{other}"
    if form == "all":
        return "/api/v1/events"
    ticket = (await http.post("/api/v1/stream-tickets", headers=auth)).json()["data"]["ticket"]
    return f"/api/v1/tasks/{task_id}/events?ticket={ticket}"


@pytest.mark.parametrize("end", ENDS)
@pytest.mark.parametrize("form", ["one", "many", "all", "ticket"])
async def test_an_ended_login_ends_its_sse_streams_with_revoked(
    http: httpx.AsyncClient, smtp: MailServer, form: str, end: str
):
    user = await signup(http)
    tokens = await login(http, user)
    auth = {"Authorization": f"Bearer {tokens['accessToken']}"}
    http.headers.update(auth)
    task_id = await start_demo(http, steps=300, stepSeconds=0.1)
    url = await stream_url(http, form, task_id, auth)
    headers = {} if form == "ticket" else auth
    async with SseStream(http, url, headers=headers) as stream:
        await stream.next()
        del http.headers["authorization"]
        await ENDS[end](http, tokens, smtp, user)
        rest = await stream.rest()  # the stream ends by itself (every wait is bounded)
    assert (rest[-1].event, rest[-1].id) == ("revoked", None)
    assert rest[-1].data["code"] == "TOKEN_REVOKED"
    ends = [e for e in rest if e.event in {"completed", "failed"}]
    assert task_id not in {e.data["taskId"] for e in ends}  # the stream ended, not the task
    again = await http.get(f"/api/v1/tasks/{task_id}/events", headers=auth)
    assert again.status_code == 401 and again.json()["error"]["code"] == "TOKEN_REVOKED"
    await cancel_as_owner(http, user, task_id)


async def cancel_as_owner(http: httpx.AsyncClient, user: Account, task_id: str) -> None:
    """Free the worker: sign in again (a reset changed the password) and cancel."""
    for password in (user.password, "a brand new one"):
        answer = await http.post(f"{AUTH}/login", json={"email": user.email, "password": password})
        if answer.status_code == 200:
            token = answer.json()["data"]["tokens"]["accessToken"]
            headers = {"Authorization": f"Bearer {token}"}
            await http.post(f"/api/v1/tasks/{task_id}/cancel", headers=headers)
            return
    raise AssertionError("could not sign in again")


@pytest.mark.parametrize("subscribed", [True, False], ids=["subscribed", "idle"])
async def test_an_ended_login_closes_its_websocket_with_4403(
    http: httpx.AsyncClient, web: Proc, smtp: MailServer, subscribed: bool
):
    user = await signup(http)
    tokens = await login(http, user)
    auth = {"Authorization": f"Bearer {tokens['accessToken']}"}
    task_id = None
    if subscribed:
        body = {"steps": 300, "stepSeconds": 0.1}
        started = await http.post("/api/v1/demo/tasks", json=body, headers=auth)
        task_id = started.json()["data"]["taskId"]
    frames: list[dict[str, Any]] = []
    async with WsClient(web.url, auth) as ws:
        if task_id is not None:
            await ws.send(type="subscribe", taskId=task_id)
            await ws.until("status", task_id)
        await logout(http, tokens, smtp, user)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                frames.append(await ws.next())
        with pytest.raises(websockets.ConnectionClosed):  # nothing is accepted after it
            await ws.send(type="cancel", taskId=task_id or "x")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    assert frames[-1] == {"event": "revoked", "code": "TOKEN_REVOKED"}
    if task_id is not None:
        await cancel_as_owner(http, user, task_id)


PAUSED = "stream opening paused"  # the web process's line when its test hook pauses


async def until_logged(proc: Proc, text: str) -> None:
    """Until `text` is in the process's log (a bounded wait)."""
    async with asyncio.timeout(WAIT):
        while text not in proc.log.read_text():
            await asyncio.sleep(0.02)


async def opening(base_url: str, form: str, url: str, headers: dict[str, str]) -> list[str]:
    """What a stream opened on `base_url` gives: its refusal, or every event (frame) it
    carries until the server ends it, then (WebSocket) its close code."""
    if form == "ws":
        try:
            async with WsClient(base_url, headers) as ws:
                frames = []
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    while True:
                        frames.append((await ws.next())["event"])
        except websockets.InvalidStatus as refused:
            error = json.loads(refused.response.body or b"{}")["error"]
            return [f"{refused.response.status_code} {error['code']}"]
        assert closed.value.rcvd is not None
        return [*frames, str(closed.value.rcvd.code)]
    async with httpx.AsyncClient(base_url=base_url, timeout=WAIT) as client:
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                await response.aread()
                return [f"{response.status_code} {response.json()['error']['code']}"]
            async with asyncio.timeout(WAIT):
                return [event.event async for event in sse_events(response)]


@pytest.mark.parametrize("form", ["one", "many", "all", "ticket", "ws"])
async def test_a_logout_while_a_stream_opens_refuses_it(
    http: httpx.AsyncClient, private: Callable[..., Proc], smtp: MailServer, form: str
):
    """The logout lands after the stream's credentials were checked and before it is
    open (the web process's test hook holds every opening there): the stream is refused,
    or ends at once with `revoked`; it never delivers the task's events."""
    web = private("web", TASKSTREAM_TEST_STREAM_OPEN_PAUSE_SECONDS="3")
    user = await signup(http)
    tokens = await login(http, user)
    auth = {"Authorization": f"Bearer {tokens['accessToken']}"}
    http.headers.update(auth)
    task_id = await start_demo(http, steps=300, stepSeconds=0.1)
    url = "" if form == "ws" else await stream_url(http, form, task_id, auth)
    headers = {} if form == "ticket" else auth
    stream = asyncio.create_task(opening(web.url, form, url, headers))
    await until_logged(web, PAUSED)
    del http.headers["authorization"]
    await logout(http, tokens, smtp, user)
    outcome = await stream
    refused, ended = ["401 TOKEN_REVOKED"], ["revoked", "4403"] if form == "ws" else ["revoked"]
    assert outcome in (refused, ended), outcome
    await cancel_as_owner(http, user, task_id)
