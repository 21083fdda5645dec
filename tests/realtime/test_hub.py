"""The hub under load and faults: one Redis link for all streams, overflow, Redis restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from redis.asyncio import Redis

from jobs.record.keys import channel
from jobs.record.tasks import TaskStore
from server.realtime.follow import follow
from server.realtime.hub import Hub
from taskstream.embedded import Valkey
from tests.support import WAIT, Proc, SseStream, WsClient, assert_no_gap, start_demo


async def web_connections(redis: Redis, pid: int) -> list[dict[str, Any]]:
    prefix = f"taskstream:web:{pid}"
    return [c for c in await redis.client_list() if c["name"].startswith(prefix)]


async def test_300_streams_all_get_every_event_over_one_pubsub_connection(
    client: httpx.AsyncClient, web: Proc, store: TaskStore, redis: Redis, auth: dict[str, str]
):
    assert web.process is not None
    count = 300
    tasks = [await store.create("demo") for _ in range(count)]
    limits = httpx.Limits(max_connections=count + 10)
    async with httpx.AsyncClient(
        base_url=web.url, headers=auth, limits=limits, timeout=WAIT
    ) as many:
        streams = [SseStream(many, f"/api/v1/tasks/{t.id}/events") for t in tasks]
        await asyncio.gather(*(s.__aenter__() for s in streams))
        try:
            snapshots = await asyncio.gather(*(s.next() for s in streams))
            assert [s.id for s in snapshots] == [t.last_event_id for t in tasks]
            connections = await web_connections(redis, web.process.pid)
            hubs = [c for c in connections if c["name"].endswith(":hub")]
            # every task's channel, and the one revocations are announced on
            assert len(hubs) == 1 and int(hubs[0]["ssub"]) == count + 1
            assert len(connections) <= 33  # the bounded pool (32) and the hub, whatever N

            async def drive(task_id: str) -> list[str]:
                ids = []
                for value in (20, 40, 60, 80):
                    ids.append((await store.progress(task_id, 0, {"progress": value})).id)
                done = await store.finish(task_id, 0, None, "/r")
                return [*ids, done.id]

            written = await asyncio.gather(*(drive(t.id) for t in tasks))
            received = await asyncio.gather(*(s.rest() for s in streams))
        finally:
            await asyncio.gather(*(s.__aexit__() for s in streams))
    assert [[e.id for e in r] for r in received] == written
    assert len(await web_connections(redis, web.process.pid)) <= 33


async def test_a_listener_that_falls_behind_catches_up_from_the_stream_in_bounded_memory(
    valkey: Valkey, store: TaskStore
):
    hub = Hub(valkey.url, queue_size=4, name="taskstream:test:hub")
    await hub.start()
    try:
        task = await store.create("demo")
        events = follow(hub, store, task.id)
        await anext(events)  # subscribed; the snapshot
        listener = next(iter(hub._channels[channel(task.id)].listeners))
        written = [(await store.progress(task.id, 0, {"progress": p})).id for p in range(50)]
        async with asyncio.timeout(WAIT):
            while not listener.stale:  # the consumer is not reading: its queue overflows
                await listener.wait()
        assert len(listener.queue) <= 4
        done = await store.finish(task.id, 0, None, "/r")
        async with asyncio.timeout(WAIT):
            rest = [e.id async for e in events]
        assert rest == [*written, done.id]
        assert hub.channel_count == 0  # the last listener left: unsubscribed
    finally:
        await hub.stop()


async def test_a_valkey_restart_mid_stream_loses_no_event_on_sse_or_websocket(
    own_valkey: Valkey, private: Callable[..., Proc], auth: dict[str, str]
):
    env = {"REDIS_URL": own_valkey.url, "TASKSTREAM_TIMEOUT_DEMO": "60"}
    web = private("web", **env)
    private("worker", **env)
    async with httpx.AsyncClient(base_url=web.url, headers=auth, timeout=WAIT) as http:
        task_id = await start_demo(http, steps=30, stepSeconds=0.1)
        async with (
            SseStream(http, f"/api/v1/tasks/{task_id}/events") as sse,
            WsClient(web.url, auth) as ws,
        ):
            await ws.send(type="subscribe", taskId=task_id)
            before = await sse.take(4)
            ws_before = await ws.until("progress")
            await asyncio.to_thread(own_valkey.stop)
            await asyncio.to_thread(own_valkey.start)
            after = await sse.rest()
            ws_after = await ws.until("unsubscribed")
    assert "hub lost Redis" in web.log.read_text()  # the restart did cut the link mid-stream
    assert after[-1].event == "completed"
    redis = Redis.from_url(own_valkey.url, decode_responses=True)
    try:
        await assert_no_gap(redis, task_id, [e.id for e in before + after])
        await assert_no_gap(redis, task_id, [f["id"] for f in ws_before + ws_after if "id" in f])
    finally:
        await redis.aclose()
