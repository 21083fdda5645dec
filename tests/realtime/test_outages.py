"""Redis going away under a running deployment: the invariant after each fault is that
every task ends, every stream ends, and every client's events are the task's log after
its first id (nothing lost, nothing doubled, in order), with the processes still up.

Each test has a Valkey of its own, stopped and started again from its append-only file."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator

import httpx
import pytest
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed

from bench.faults import Followed, follow
from server.realtime.follow import RECONNECT_MS
from taskstream.embedded import Valkey
from tests.support import WAIT, Proc, WsClient, assert_no_gap, signup, start_demo

ENDED = {"completed", "failed", "cancelled"}


@pytest.fixture
def deploy(
    own_valkey: Valkey, spawn: Callable[..., Proc], env: dict[str, str]
) -> Iterator[Callable[..., Proc]]:
    """Web and worker processes on this test's Valkey, stopped when it ends."""
    mine: list[Proc] = []

    def start(role: str, **extra: str) -> Proc:
        proc = spawn(role, {**env, "REDIS_URL": own_valkey.url, **extra})
        mine.append(proc)
        return proc

    yield start
    for proc in mine:
        proc.stop()


async def assert_each_stream_is_the_log(redis: Redis, streams: dict[str, list[str]]) -> None:
    for task_id, received in streams.items():
        await assert_no_gap(redis, task_id, received)  # so no id twice either


async def test_a_web_process_answers_503_with_retry_after_while_redis_is_down_then_recovers(
    own_valkey: Valkey, deploy: Callable[..., Proc]
):
    web = deploy("web")
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)
        own_valkey.stop()
        ready = await http.get("/readyz")
        login = await http.post(
            "/api/v1/auth/login", json={"email": user.email, "password": user.password}
        )
        status = await http.get(f"/api/v1/tasks/{user.signup_task}/status", headers=user.headers)
        events = await http.get(f"/api/v1/tasks/{user.signup_task}/events", headers=user.headers)
        for refused in (ready, login, status, events):
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "REDIS_UNAVAILABLE"
            assert 1 <= int(refused.headers["Retry-After"]) <= 3
        own_valkey.start()
        assert (await http.get("/readyz")).status_code == 200
        login = await http.post(
            "/api/v1/auth/login", json={"email": user.email, "password": user.password}
        )
        assert login.status_code == 200, login.text


async def test_a_websocket_subscribing_while_redis_is_down_is_told_to_reconnect(
    own_valkey: Valkey, deploy: Callable[..., Proc]
):
    web = deploy("web")
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)
    async with WsClient(web.url, user.headers) as ws:
        own_valkey.stop()
        await ws.send(type="subscribe", taskId=user.signup_task)
        assert await ws.next() == {"event": "reconnect", "retryMs": RECONNECT_MS}
        with pytest.raises(ConnectionClosed) as closed:
            await ws.next()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013  # try again later


async def test_requests_answer_503_in_bounded_time_while_redis_is_stopped_not_gone(
    own_valkey: Valkey, deploy: Callable[..., Proc]
):
    web = deploy("web", TASKSTREAM_ANSWER_WITHIN_SECONDS="3")
    assert own_valkey.process is not None
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)
        credentials = {"email": user.email, "password": user.password}
        own_valkey.process.send_signal(signal.SIGSTOP)  # connections stay up; no answer comes
        try:
            ready = await http.get("/readyz")
            login = await http.post("/api/v1/auth/login", json=credentials)
            status = await http.get(
                f"/api/v1/tasks/{user.signup_task}/status", headers=user.headers
            )
        finally:
            own_valkey.process.send_signal(signal.SIGCONT)
        assert (ready.status_code, ready.json()["error"]["code"]) == (503, "REDIS_UNAVAILABLE")
        for hung in (login, status):  # cut at the bound, not left hanging
            assert (hung.status_code, hung.json()["error"]["code"]) == (503, "UNAVAILABLE")
            assert "Retry-After" in hung.headers
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.post("/api/v1/auth/login", json=credentials)).status_code == 200


async def test_tasks_running_through_an_outage_longer_than_the_workers_patience_all_end(
    own_valkey: Valkey, deploy: Callable[..., Proc]
):
    limits = {
        "TASKSTREAM_TIMEOUT_DEMO": "60",
        "TASKSTREAM_REDIS_PATIENCE_SECONDS": "1",  # the outage outlasts every write's tries
    }
    web, worker = deploy("web", **limits), deploy("worker", **limits)
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)
        http.headers.update(user.headers)
        ids = [await start_demo(http, steps=40, stepSeconds=0.1) for _ in range(4)]
        # each followed as an EventSource would: again with its last id whenever it breaks
        seen = {task_id: Followed() for task_id in ids}
        following = [follow([web.url], user.access, t, seen[t]) for t in ids]
        followed = asyncio.gather(*following)
        async with asyncio.timeout(WAIT):  # every task is running
            while True:
                statuses = [
                    (await http.get(f"/api/v1/tasks/{t}/status")).json()["data"] for t in ids
                ]
                if all(s["progress"] >= 10 for s in statuses):
                    break
                await asyncio.sleep(0.05)
        own_valkey.stop()
        await until_logged(worker, "Redis unreachable; waiting for it")
        own_valkey.start()
        async with asyncio.timeout(WAIT * 4):
            await followed
        streams = {t: [event_id for event_id, _, _ in seen[t].events] for t in ids}
        ends = [(await http.get(f"/api/v1/tasks/{t}/status")).json()["data"] for t in ids]
    assert all(end["status"] in ENDED for end in ends), ends
    assert all(end["errorCode"] != "INTERNAL_ERROR" for end in ends), ends
    async with Redis.from_url(own_valkey.url, decode_responses=True) as redis:
        await assert_each_stream_is_the_log(redis, streams)
    assert worker.process is not None and worker.process.poll() is None  # still up


async def until_logged(proc: Proc, text: str) -> None:
    async with asyncio.timeout(WAIT * 2):
        while text not in proc.log.read_text():
            await asyncio.sleep(0.1)
