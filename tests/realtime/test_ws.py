"""WebSocket delivery: the same contract as SSE, many tasks on one socket, cancel."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
import websockets
from redis.asyncio import Redis

from jobs.record import keys
from jobs.record.tasks import TaskStore
from server.serve import WS_MAX_FRAME
from tests.support import Proc, WsClient, start_demo, wait_for_status


async def stream_ids(store: TaskStore, task_id: str, after: str) -> list[str]:
    entries = await store.records.xrange(keys.events(task_id), f"({after}")
    return [eid for eid, _ in entries]


async def test_a_demo_tasks_events_arrive_complete_and_in_order(
    client: httpx.AsyncClient, web: Proc, store: TaskStore, auth: dict[str, str]
):
    task_id = await start_demo(client, steps=10, stepSeconds=0.05)
    async with WsClient(web.url, auth) as ws:
        await ws.send(type="subscribe", taskId=task_id)
        frames = await ws.until("unsubscribed")
    assert frames[0] == {"event": "subscribed", "taskId": task_id}
    events = frames[1:-1]
    assert events[0]["event"] == "status"
    assert events[-1]["event"] == "completed"
    assert [f["id"] for f in events[1:]] == await stream_ids(store, task_id, events[0]["id"])
    assert frames[-1] == {"event": "unsubscribed", "taskId": task_id, "reason": "ended"}


async def test_many_tasks_on_one_socket_and_resume_with_last_event_id(
    client: httpx.AsyncClient, web: Proc, store: TaskStore, auth: dict[str, str]
):
    a, b = await store.create("demo"), await store.create("demo")
    async with WsClient(web.url, auth) as ws:
        await ws.send(type="subscribe", taskId=a.id)
        await ws.send(type="subscribe", taskId=b.id)
        frames = [await ws.next() for _ in range(4)]  # the two tasks' frames may interleave
        statuses = {f["data"]["taskId"] for f in frames if f["event"] == "status"}
        assert statuses == {a.id, b.id}
        written = await store.progress(a.id, 0, {"progress": 10})
        frames = await ws.until("progress", a.id)
        assert frames[-1]["id"] == written.id
    missed = [(await store.progress(a.id, 0, {"progress": p})).id for p in (20, 30)]
    async with WsClient(web.url, auth) as ws:
        await ws.send(type="subscribe", taskId=a.id, lastEventId=written.id)
        assert await ws.next() == {"event": "subscribed", "taskId": a.id}
        assert [(await ws.next())["id"] for _ in missed] == missed
        await ws.send(type="unsubscribe", taskId=a.id)
        assert (await ws.next())["reason"] == "asked"
        await store.progress(a.id, 0, {"progress": 40})  # must not reach this socket
        await ws.send(type="subscribe", taskId=b.id, lastEventId=b.last_event_id)
        await ws.next()
        done = await store.finish(b.id, 0, None, "/r")
        frame = await ws.next()
    assert frame["id"] == done.id  # nothing of `a` after the unsubscribe


async def test_cancel_over_the_socket_ends_the_running_task(
    client: httpx.AsyncClient, web: Proc, auth: dict[str, str]
):
    task_id = await start_demo(client, steps=100, stepSeconds=0.1)
    await wait_for_status(client, task_id, {"processing"})
    async with WsClient(web.url, auth) as ws:
        await ws.send(type="subscribe", taskId=task_id)
        await ws.until("status", task_id)
        await ws.send(type="cancel", taskId=task_id)
        seen: set[str] = set()
        while not {"cancelled", "cancelAccepted"} <= seen:  # the two may come in either order
            seen.add((await ws.next())["event"])
        await ws.send(type="cancel", taskId=task_id)
        frames = await ws.until("error")
    assert frames[-1]["error"]["code"] == "TASK_FINISHED"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "INVALID_JSON"),
        ("[" * 1000 + "]" * 1000, "INVALID_JSON"),
        ('{"type": "subscribe", "taskId": NaN}', "INVALID_JSON"),
        ('{"type": "dance"}', "BAD_MESSAGE"),
        ('["subscribe"]', "BAD_MESSAGE"),
        ('{"type": "subscribe", "taskId": "nope"}', "TASK_NOT_FOUND"),
        ('{"type": "subscribe", "taskId": "6f1c2d3e-4b5a-4c6d-8e7f-901234567890"}',
         "TASK_NOT_FOUND"),
        ('{"type": "cancel", "taskId": "6f1c2d3e-4b5a-4c6d-8e7f-901234567890"}',
         "TASK_NOT_FOUND"),
        ('{"type": "subscribe", "taskId": "\\ud800"}', "TASK_NOT_FOUND"),
        (b'{"type": "subscribe"}', "BAD_MESSAGE"),
    ],
    ids=["not-json", "nested-1000-deep", "nan", "unknown-type", "not-an-object",
         "malformed-id", "unknown-id", "cancel-unknown", "lone-surrogate", "binary"],
)  # fmt: skip
async def test_a_bad_frame_gets_an_error_frame_and_the_socket_stays_usable(
    client: httpx.AsyncClient,
    web: Proc,
    store: TaskStore,
    frame: str | bytes,
    code: str,
    auth: dict[str, str],
):
    task = await store.create("demo")
    async with WsClient(web.url, auth) as ws:
        await ws.socket.send(frame)
        error = await ws.next()
        assert error["event"] == "error" and error["error"]["code"] == code
        await ws.send(type="subscribe", taskId=task.id)
        assert await ws.next() == {"event": "subscribed", "taskId": task.id}
        assert (await ws.next())["event"] == "status"


async def test_a_5000_digit_last_event_id_counts_as_none(
    web: Proc, auth: dict[str, str], store: TaskStore
):
    task = await store.create("demo")
    async with WsClient(web.url, auth) as ws:
        await ws.send(type="subscribe", taskId=task.id, lastEventId="9" * 5000 + "-0")
        assert await ws.next() == {"event": "subscribed", "taskId": task.id}
        assert (await ws.next())["event"] == "status"


async def test_a_frame_larger_than_the_servers_limit_closes_the_socket_1009(
    web: Proc, auth: dict[str, str], store: TaskStore
):
    import websockets

    task = await store.create("demo")
    async with WsClient(web.url, auth) as ws:
        await ws.send(type="subscribe", taskId=task.id, padding="x" * (WS_MAX_FRAME + 1))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.next()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    async with WsClient(web.url, auth) as ws:  # a frame within it is served as ever
        await ws.send(type="subscribe", taskId=task.id, padding="x" * 1000)
        assert await ws.next() == {"event": "subscribed", "taskId": task.id}


async def test_a_subscription_that_fails_ends_the_socket_with_reconnect_1011(
    private: Callable[..., Proc], store: TaskStore, redis: Redis, auth: dict[str, str]
):
    """A subscription whose reads fail with an error that is not an outage (here an entry
    of the task's log that is not an event) must not go silent and leave the socket open
    forever: the client is told to reconnect, and the failure is logged with the task."""
    web = private("web")
    assert web.process is not None
    task = await store.create("demo")
    async with WsClient(web.url, auth) as ws:
        await ws.send(type="subscribe", taskId=task.id)
        await ws.until("status")
        await store.records.xadd(keys.events(task.id), {"not": "an event"})
        # the hub's link cut: it links again and every stream reads its log to catch up
        hub = f"taskstream:web:{web.process.pid}:hub"
        (link,) = [c for c in await redis.client_list() if c["name"] == hub]
        await redis.client_kill_filter(_id=link["id"])
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                frame = await ws.next()
    assert frame == {"event": "reconnect", "retryMs": 1000}
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    failed = [line for line in web.log.read_text().splitlines() if "subscription failed" in line]
    assert failed and json.loads(failed[0])["taskId"] == task.id
