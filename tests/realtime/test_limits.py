"""A web process past its stream limit refuses new streams instead of growing."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable

import httpx
import pytest
import websockets

from jobs.record.tasks import TaskStore
from tests.server.test_auth import link_in
from tests.smtp import MailServer
from tests.support import (
    WAIT,
    Proc,
    SseStream,
    WsClient,
    own_metric,
    signup,
    start_demo,
    wait_for_status,
)


async def test_past_the_limit_every_stream_route_gets_503_with_retry_after(
    private: Callable[..., Proc], store: TaskStore, auth: dict[str, str]
):
    web = private("web", TASKSTREAM_MAX_STREAMS="2")
    task = await store.create("demo")
    url = f"/api/v1/tasks/{task.id}/events"
    async with httpx.AsyncClient(base_url=web.url, headers=auth, timeout=WAIT) as http:
        async with SseStream(http, url) as first, SseStream(http, url):
            await first.next()
            for route in (url, f"/api/v1/events?tasks={task.id}", "/api/v1/events"):
                refused = await http.get(route)
                assert refused.status_code == 503, route
                assert 1 <= int(refused.headers["retry-after"]) <= 5
                assert refused.json()["error"]["code"] == "STREAMS_EXHAUSTED"
            with pytest.raises(websockets.InvalidStatus) as denied:
                async with WsClient(web.url, auth):
                    pass
            answer = denied.value.response
            assert answer.status_code == 503 and 1 <= int(answer.headers["retry-after"]) <= 5
            assert json.loads(answer.body)["error"]["code"] == "STREAMS_EXHAUSTED"
            ticket = await http.post("/api/v1/stream-tickets")  # for a stream it would refuse
            assert ticket.status_code == 503 and "retry-after" in ticket.headers
            assert (await http.get("/api/v1/tasks")).status_code == 200  # the rest is served
            metrics = (await http.get("/metrics")).text
            assert web.process is not None
            refusals = "taskstream_streams_refused_total"
            assert own_metric(metrics, web.process.pid, refusals, reason="full") == 5
        refused_again = 0  # asked before the server saw the two streams go: refused too
        async with asyncio.timeout(WAIT):  # the closed streams free their places
            while True:
                async with http.stream("GET", url) as again:
                    if again.status_code == 200:
                        break
                    refused_again += 1
                await asyncio.sleep(0.05)
    log = web.log.read_text()
    assert log.count("new ones get 503") == 1  # one warning an episode
    assert f"admitted again, after {5 + refused_again} refused" in log


async def test_one_user_past_their_stream_limit_gets_429_while_others_are_served(
    private: Callable[..., Proc], store: TaskStore
):
    web = private("web", TASKSTREAM_MAX_STREAMS_PER_USER="2")
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user, other = await signup(http), await signup(http)  # counted alone: nobody else's
        task = await store.create("demo", owner=user.user_id)
        url = f"/api/v1/tasks/{task.id}/events"
        async with SseStream(http, url, user.headers) as first, SseStream(http, url, user.headers):
            await first.next()
            refused = await http.get(url, headers=user.headers)
            assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 5
            assert refused.json()["error"]["code"] == "TOO_MANY_STREAMS"
            with pytest.raises(websockets.InvalidStatus) as denied:
                async with WsClient(web.url, user.headers):
                    pass
            assert denied.value.response.status_code == 429
            theirs = await store.create("demo", owner=other.user_id)
            async with SseStream(http, f"/api/v1/tasks/{theirs.id}/events", other.headers) as s:
                assert (await s.next()).event == "status"  # another user is not held back


async def test_a_user_with_too_many_tasks_in_flight_gets_429_until_one_ends(
    private: Callable[..., Proc],
):
    limits = {"TASKSTREAM_MAX_TASKS_IN_FLIGHT_UNVERIFIED": "2"}  # (a new account's)
    web = private("web", **limits)
    private("worker", **limits)
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)
        http.headers.update(user.headers)
        await wait_for_status(http, user.signup_task, {"completed", "failed"})
        first = await start_demo(http, steps=100, stepSeconds=0.05)
        await start_demo(http, steps=100, stepSeconds=0.05)
        third = await http.post("/api/v1/demo/tasks", json={"steps": 1})
        assert third.status_code == 429 and third.headers["retry-after"] == "5"
        assert third.json()["error"]["code"] == "TOO_MANY_TASKS"
        await http.post(f"/api/v1/tasks/{first}/cancel")
        assert (await http.post("/api/v1/demo/tasks", json={"steps": 1})).status_code == 202


async def open_at_once(urls: list[str], headers: dict[str, str]) -> list[int]:
    """Open every stream at once, hold those admitted until every open has its answer:
    the status codes."""
    release = asyncio.Event()
    limits = httpx.Limits(max_connections=len(urls))
    async with httpx.AsyncClient(headers=headers, timeout=WAIT, limits=limits) as http:

        async def open_and_hold(url: str) -> int:
            async with http.stream("GET", url) as response:
                if response.status_code == 200:
                    await release.wait()
                return response.status_code

        attempts = [asyncio.create_task(open_and_hold(url)) for url in urls]
        async with asyncio.timeout(WAIT):
            while sum(a.done() for a in attempts) < len(urls) * 4 // 5:  # refusals: at once
                await asyncio.wait(attempts, return_when=asyncio.FIRST_COMPLETED)
        release.set()
        return list(await asyncio.gather(*attempts))


async def test_a_hundred_concurrent_opens_get_exactly_the_users_limit_of_streams(
    private: Callable[..., Proc], store: TaskStore, auth: dict[str, str]
):
    web = private("web", TASKSTREAM_MAX_STREAMS_PER_USER="20")
    task = await store.create("demo")
    codes = await open_at_once([f"{web.url}/api/v1/tasks/{task.id}/events"] * 100, auth)
    assert (codes.count(200), codes.count(429)) == (20, 80)


async def test_a_users_limit_holds_across_web_processes(
    private: Callable[..., Proc], store: TaskStore
):
    """100 opens at once, half to each of two web processes: exactly the limit in all."""
    webs = [private("web", TASKSTREAM_MAX_STREAMS_PER_USER="20") for _ in range(2)]
    async with httpx.AsyncClient(base_url=webs[0].url, timeout=WAIT) as http:
        user = await signup(http)
    task = await store.create("demo", owner=user.user_id)
    urls = [f"{web.url}/api/v1/tasks/{task.id}/events" for web in webs] * 50
    codes = await open_at_once(urls, user.headers)
    assert (codes.count(200), codes.count(429)) == (20, 80)


async def test_a_killed_processs_streams_stop_counting_against_its_users_limit(
    private: Callable[..., Proc], store: TaskStore
):
    """The places of a process killed without a word come back once its lease lapses
    (seconds), to the same user on another process."""
    held = private("web", TASKSTREAM_MAX_STREAMS_PER_USER="2")
    other = private("web", TASKSTREAM_MAX_STREAMS_PER_USER="2")
    async with httpx.AsyncClient(base_url=other.url, timeout=WAIT) as http:
        user = await signup(http)
        task = await store.create("demo", owner=user.user_id)
        path = f"/api/v1/tasks/{task.id}/events"
        first = SseStream(http, held.url + path, user.headers)
        second = SseStream(http, held.url + path, user.headers)
        async with first, second:
            refused = await http.get(path, headers=user.headers)
            assert refused.status_code == 429  # the two on `held` count here
            held.stop(signal.SIGKILL)
            async with asyncio.timeout(WAIT):
                while True:
                    async with http.stream("GET", path, headers=user.headers) as again:
                        if again.status_code == 200:
                            break
                        assert again.status_code == 429
                    await asyncio.sleep(0.2)


async def test_a_hundred_concurrent_submits_start_exactly_the_users_limit_of_tasks(
    private: Callable[..., Proc],
):
    limits = {"TASKSTREAM_MAX_TASKS_IN_FLIGHT_UNVERIFIED": "20"}
    web = private("web", **limits)
    async with httpx.AsyncClient(
        base_url=web.url, timeout=WAIT, limits=httpx.Limits(max_connections=200)
    ) as http:
        user = await signup(http)  # no worker: its mail stays in flight, one of the 20
        http.headers.update(user.headers)
        body = {"steps": 1}
        answers = await asyncio.gather(
            *(http.post("/api/v1/demo/tasks", json=body) for _ in range(100))
        )
        codes = [a.status_code for a in answers]
        assert (codes.count(202), codes.count(429)) == (19, 81)
        listed = (await http.get("/api/v1/tasks", params={"kind": "demo"})).json()["data"]
        assert listed["total"] == 19


async def test_an_unverified_account_starts_fewer_tasks_an_hour_until_it_verifies(
    private: Callable[..., Proc], smtp: MailServer
):
    limits = {"TASKSTREAM_MAX_TASKS_PER_HOUR_UNVERIFIED": "2",
              "TASKSTREAM_MAX_TASKS_PER_HOUR_PER_USER": "3",
              "TASKSTREAM_MAX_TASKS_IN_FLIGHT_UNVERIFIED": "1"}  # fmt: skip
    web = private("web", **limits)
    private("worker", **limits)
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)
        http.headers.update(user.headers)
        await wait_for_status(http, user.signup_task, {"completed"})  # (the mail: no count)
        first = await start_demo(http, steps=200, stepSeconds=0.05)
        busy = await http.post("/api/v1/demo/tasks", json={"steps": 1})
        assert busy.status_code == 429 and busy.json()["error"]["code"] == "TOO_MANY_TASKS"
        assert "verify your e-mail address" in busy.json()["error"]["message"]
        await http.post(f"/api/v1/tasks/{first}/cancel")
        await start_demo(http, steps=1)  # the refused one did not count: this is the 2nd
        hourly = await http.post("/api/v1/demo/tasks", json={"steps": 1})
        assert hourly.status_code == 429
        assert hourly.json()["error"]["code"] == "TOO_MANY_TASKS_STARTED"
        assert 1 <= int(hourly.headers["retry-after"]) <= 3600
        _, token = link_in(await smtp.mail_for(user.email))
        assert (await http.post("/api/v1/auth/verify-email", json={"token": token})).is_success
        await start_demo(http, steps=1)  # verified: the full hour's share, 3
        again = await http.post("/api/v1/demo/tasks", json={"steps": 1})
        assert again.json()["error"]["code"] == "TOO_MANY_TASKS_STARTED"
