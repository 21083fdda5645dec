"""SSE delivery: complete and in order, resume without gap or duplicate, resync, 204."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from redis.asyncio import Redis

from jobs.record import keys
from jobs.record.keys import channel
from jobs.record.tasks import TaskStore
from tests.support import WAIT, Account, SseStream, collect, start_demo


def events_url(task_id: str) -> str:
    return f"/api/v1/tasks/{task_id}/events"


async def stream_ids(store: TaskStore, task_id: str, after: str | None = "-") -> list[str]:
    start = "-" if after in ("-", None) else f"({after}"
    return [eid for eid, _ in await store.records.xrange(keys.events(task_id), start)]


async def progress(store: TaskStore, task_id: str, *values: int) -> list[str]:
    return [(await store.progress(task_id, 0, {"progress": v})).id for v in values]


async def test_a_demo_tasks_events_arrive_complete_and_in_order(
    client: httpx.AsyncClient, store: TaskStore
):
    task_id = await start_demo(client, steps=10, stepSeconds=0.05)
    received = await collect(client, events_url(task_id))
    assert received[0].event == "status"
    assert received[-1].event == "completed"
    assert received[-1].data["resultUrl"] == f"/api/v1/tasks/{task_id}/result"
    assert [e.id for e in received[1:]] == await stream_ids(store, task_id, received[0].id)
    values = [e.data["progress"] for e in received]
    assert values == sorted(values) and values[-1] == 100


async def test_live_events_follow_the_snapshot_as_they_are_written(
    client: httpx.AsyncClient, store: TaskStore
):
    task = await store.create("demo")
    async with SseStream(client, events_url(task.id)) as stream:
        snapshot = await stream.next()
        assert (snapshot.event, snapshot.id, snapshot.data["status"]) == (
            "status", task.last_event_id, "pending",
        )  # fmt: skip
        written = await progress(store, task.id, 10, 20, 30)
        assert [e.id for e in await stream.take(3)] == written
        done = await store.finish(task.id, 0, None, "/r")
        rest = await stream.rest()
    assert [(e.id, e.event) for e in rest] == [(done.id, "completed")]


async def test_reconnect_with_last_event_id_replays_exactly_the_missed_events_then_live(
    client: httpx.AsyncClient, store: TaskStore
):
    task = await store.create("demo")
    async with SseStream(client, events_url(task.id)) as stream:
        await stream.next()
        first = await progress(store, task.id, 10, 20)
        seen = await stream.take(2)
    assert [e.id for e in seen] == first
    missed = await progress(store, task.id, 30, 40, 50)  # while disconnected
    headers = {"Last-Event-ID": seen[-1].id or ""}
    async with SseStream(client, events_url(task.id), headers) as stream:
        replayed = await stream.take(3)
        live = await progress(store, task.id, 60)
        live_received = await stream.next()
        done = await store.finish(task.id, 0, None, "/r")
        tail = await stream.rest()
    assert [e.id for e in replayed] == missed
    assert [e.data["progress"] for e in replayed] == [30, 40, 50]
    assert live_received.id == live[0]
    assert [e.id for e in tail] == [done.id]


async def test_last_event_id_may_come_in_the_query_for_a_fresh_event_source(
    client: httpx.AsyncClient, store: TaskStore
):
    task = await store.create("demo")
    missed = await progress(store, task.id, 5, 6)
    async with SseStream(client, f"{events_url(task.id)}?lastEventId={task.last_event_id}") as s:
        assert [e.id for e in await s.take(2)] == missed


async def test_an_id_older_than_the_capped_stream_gets_a_resync_snapshot(
    client: httpx.AsyncClient, store: TaskStore, account: Account
):
    small = TaskStore(store.redis, replace(store.settings, stream_maxlen=5), store.records)
    task = await small.create("demo", owner=account.user_id)
    for value in range(1, 300):
        await small.progress(task.id, 0, {"progress": value % 100})
    headers = {"Last-Event-ID": task.last_event_id}
    async with SseStream(client, events_url(task.id), headers) as stream:
        snapshot = await stream.next()
        done = await small.finish(task.id, 0, None, "/r")
        rest = await stream.rest()
    current = await stream_ids(store, task.id)
    assert snapshot.event == "status"
    assert snapshot.data["resync"] is True
    assert snapshot.id == current[-2]  # the newest event before `completed`
    assert [e.id for e in rest] == [done.id]


@pytest.mark.parametrize("start", ["0", "0-0"])
async def test_last_event_id_zero_replays_every_event_after_the_tasks_creation(
    client: httpx.AsyncClient, store: TaskStore, start: str
):
    task = await store.create("demo")
    written = await progress(store, task.id, 5, 6)
    async with SseStream(client, events_url(task.id), {"Last-Event-ID": start}) as stream:
        replayed = await stream.take(2)
        done = await store.finish(task.id, 0, None, "/r")
        rest = await stream.rest()
    assert [e.id for e in replayed] == written  # no snapshot first: the history itself
    assert [e.data["progress"] for e in replayed] == [5, 6]
    assert [e.id for e in rest] == [done.id]


async def test_a_replay_from_the_start_of_a_trimmed_history_gets_a_resync_snapshot(
    client: httpx.AsyncClient, store: TaskStore, account: Account
):
    small = TaskStore(store.redis, replace(store.settings, stream_maxlen=5), store.records)
    task = await small.create("demo", owner=account.user_id)
    for value in range(1, 300):  # the creation event is long trimmed
        await small.progress(task.id, 0, {"progress": value % 100})
    async with SseStream(client, events_url(task.id), {"Last-Event-ID": "0"}) as stream:
        snapshot = await stream.next()
    assert (snapshot.event, snapshot.data["resync"]) == ("status", True)
    assert snapshot.id == (await stream_ids(store, task.id))[-1]


@pytest.mark.parametrize(
    "bogus", ["garbage", "1-", "99999999999999-0", "9" * 5000 + "-0", "1-" + "9" * 5000]
)
async def test_an_unusable_last_event_id_still_gets_a_usable_first_event(
    client: httpx.AsyncClient, store: TaskStore, bogus: str
):
    task = await store.create("demo")
    async with SseStream(client, events_url(task.id), {"Last-Event-ID": bogus}) as stream:
        first = await stream.next()
    assert (first.event, first.id) == ("status", task.last_event_id)


@pytest.mark.parametrize("form", ["header", "query"])
async def test_a_5000_digit_id_on_every_stream_form_counts_as_none(
    client: httpx.AsyncClient, store: TaskStore, form: str
):
    """Python's int() refuses more than 4,300 digits: such an id is no id, never a 500."""
    task = await store.create("demo")
    huge = "9" * 5000
    urls = {
        f"/api/v1/events?tasks={task.id}": f"{huge}-0",
        "/api/v1/events": f"{huge}|{task.id}=1-0",
    }
    for url, cursor in urls.items():
        if form == "header":
            headers = {"Last-Event-ID": cursor}
        else:
            url, headers = f"{url}{'&' if '?' in url else '?'}lastEventId={cursor}", {}
        async with SseStream(client, url, headers) as stream:
            first = await stream.next()
        assert first.event == "status", url  # (all tasks: this one, or another unfinished)


async def test_a_finished_task_streams_its_final_snapshot_then_204_on_reconnect(
    client: httpx.AsyncClient, store: TaskStore
):
    task = await store.create("demo")
    done = await store.fail(task.id, "X", "it broke")
    received = await collect(client, events_url(task.id))
    assert [(e.event, e.id, e.data["status"]) for e in received] == [("status", done.id, "failed")]
    again = await client.get(events_url(task.id), headers={"Last-Event-ID": done.id})
    assert again.status_code == 204
    earlier = await client.get(events_url(task.id), headers={"Last-Event-ID": task.last_event_id})
    assert earlier.status_code == 200
    assert "event: failed" in earlier.text


async def test_stream_headers_disable_buffering_caching_and_compression(
    client: httpx.AsyncClient, store: TaskStore
):
    task = await store.create("demo")
    await store.cancel(task.id)
    response = await client.get(events_url(task.id), headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "content-encoding" not in response.headers


async def test_an_idle_stream_gets_heartbeat_comments(client: httpx.AsyncClient, store: TaskStore):
    task = await store.create("demo")  # nothing will happen to it
    async with asyncio.timeout(WAIT), client.stream("GET", events_url(task.id)) as response:
        lines = response.aiter_lines()
        async for line in lines:
            if line.startswith(":"):
                break
    assert line.startswith(": ping")


async def test_many_tasks_share_one_stream_each_complete_and_in_order(
    client: httpx.AsyncClient, store: TaskStore
):
    ids = [await start_demo(client, steps=6, stepSeconds=0.05) for _ in range(3)]
    received = await collect(client, "/api/v1/events?tasks=" + ",".join(ids))
    for index, task_id in enumerate(ids):
        mine = [e for e in received if e.data["taskId"] == task_id]
        own_ids = [(e.id or "").split(",")[index] for e in mine]
        # (a task done before the stream opened has one event: its final snapshot)
        assert mine[0].event == "status" and mine[-1].data["status"] == "completed"
        assert own_ids[1:] == await stream_ids(store, task_id, own_ids[0])
    assert all(len((e.id or "").split(",")) == 3 for e in received)


async def test_a_multi_task_stream_resumes_from_its_cursor(
    client: httpx.AsyncClient, store: TaskStore
):
    a, b = await store.create("demo"), await store.create("demo")
    url = f"/api/v1/events?tasks={a.id},{b.id}"
    async with SseStream(client, url) as stream:
        snapshots = await stream.take(2)
        cursor = snapshots[-1].id or ""
    assert sorted(cursor.split(",")) == sorted([a.last_event_id, b.last_event_id])
    await progress(store, a.id, 10)
    await progress(store, b.id, 20)
    async with SseStream(client, url, {"Last-Event-ID": cursor}) as stream:
        resumed = await stream.take(2)
        done_a = await store.finish(a.id, 0, None, "/r")
        done_b = await store.finish(b.id, 0, None, "/r")
        rest = await stream.rest()
    assert sorted(json.dumps([e.event, e.data["progress"]]) for e in resumed) == sorted(
        [json.dumps(["progress", 10]), json.dumps(["progress", 20])]
    )
    final_cursor = (rest[-1].id or "").split(",")
    assert final_cursor == [done_a.id, done_b.id]
    after_end = await client.get(url, headers={"Last-Event-ID": rest[-1].id or ""})
    assert after_end.status_code == 204


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("?tasks=nope", 404, "TASK_NOT_FOUND"),
        ("?tasks=" + ",".join(["6f1c2d3e-4b5a-4c6d-8e7f-901234567890"] * 2), 400, "TOO_MANY_TASKS"),
    ],
    ids=["unknown", "duplicates"],
)
async def test_a_bad_multi_task_request_is_answered_in_the_envelope(
    client: httpx.AsyncClient, query: str, status: int, code: str
):
    response = await client.get("/api/v1/events" + query)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


async def subscribers(store: TaskStore, *task_ids: str) -> int:
    counts = await store.redis.pubsub_shardnumsub(*(channel(t) for t in task_ids))
    return sum(n for _, n in counts)


@pytest.mark.parametrize("multi", [False, True], ids=["one-task", "many-tasks"])
async def test_a_client_that_goes_away_leaves_no_subscription_behind(
    client: httpx.AsyncClient, store: TaskStore, multi: bool
):
    a, b = await store.create("demo"), await store.create("demo")
    url = f"/api/v1/events?tasks={a.id},{b.id}" if multi else events_url(a.id)
    async with SseStream(client, url) as stream:
        await stream.next()
        assert await subscribers(store, a.id, b.id) == (2 if multi else 1)
        await progress(store, a.id, *range(100))  # written while the client is not reading
        await progress(store, b.id, *range(100))
    async with asyncio.timeout(WAIT):
        while await subscribers(store, a.id, b.id):
            await asyncio.sleep(0.05)


async def test_a_stream_runs_after_the_middleware_stack_has_returned(redis: Redis):
    """The body runs outside the request's middleware and routing (their frames freed),
    and gives back its place at the gate when it ends."""
    from server.realtime.gate import Gate
    from server.realtime.handover import with_handover
    from server.realtime.heartbeat import Heartbeat
    from server.realtime.sessions import Sessions
    from server.realtime.sse import EventStream
    from server.realtime.tally import StreamTally

    tally = StreamTally(redis, 10)
    await tally.start()
    gate = Gate(10, tally)
    admission = await gate.admit("sse", "u")
    stack_returned: list[bool] = []
    seen: list[bool] = []
    sent: list[dict[str, object]] = []

    async def body() -> AsyncIterator[bytes]:
        seen.append(bool(stack_returned))
        yield b"data: 1\n\n"

    async def app(scope, receive, send):  # a middleware around the endpoint's answer
        stream = EventStream(
            body(), heartbeat=Heartbeat(60), admission=admission,
            watch=Sessions().open("f", 2e9),
        )  # fmt: skip
        await stream(scope, receive, send)
        stack_returned.append(True)

    async def receive():
        await asyncio.Event().wait()

    async def send(message):
        sent.append(message)

    await asyncio.wait_for(with_handover(app, {"type": "http"}, receive, send), WAIT)
    assert seen == [True]
    assert [m["type"] for m in sent] == ["http.response.start", *["http.response.body"] * 2]
    assert sent[1]["body"] == b"data: 1\n\n" and sent[2]["more_body"] is False
    assert gate.open["sse"] == 0 and not tally.held  # the place was given back
    await tally.stop()
