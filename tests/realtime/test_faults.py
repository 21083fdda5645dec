"""Fault matrix, over real sockets: a disconnect storm of 2,000 clients, and a client that
stops reading while its task writes on."""

from __future__ import annotations

import asyncio
import re
import resource
import socket
from collections.abc import Callable

import httpx
from redis.asyncio import Redis

from jobs.record.keys import channel
from jobs.record.tasks import TaskStore
from taskstream.loadtest.report import rss_kib
from tests.support import WAIT, Account, Proc, assert_no_gap

STORM = 2000


async def open_stream(port: int, token: str, task_id: str) -> asyncio.StreamWriter:
    """An SSE stream over a raw socket, once its first event (the snapshot) has arrived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /api/v1/tasks/{task_id}/events HTTP/1.0\r\nHost: t\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    while not (await reader.readline()).startswith(b"event: status"):
        pass
    return writer


async def gauge(http: httpx.AsyncClient, pid: int, name: str) -> float:
    """The process's own gauge, summed over its other labels."""
    text = (await http.get("/metrics")).text
    own = rf'^{name}{{process="{re.escape(socket.gethostname())}:{pid}"[^}}]*}} (\S+)$'
    return sum(float(v) for v in re.findall(own, text, re.M))


async def settles(http: httpx.AsyncClient, pid: int, name: str, value: float) -> None:
    """Wait (bounded) until the process's gauge reads `value`."""
    async with asyncio.timeout(WAIT * 2):
        while await gauge(http, pid, name) != value:
            await asyncio.sleep(0.1)


async def storm(port: int, token: str, ids: list[str]) -> None:
    writers: list[asyncio.StreamWriter] = []
    for start in range(0, len(ids), 200):
        writers += await asyncio.gather(
            *(open_stream(port, token, t) for t in ids[start : start + 200])
        )
    for writer in writers:  # everyone leaves at once
        writer.transport.abort()


async def test_a_storm_of_2000_clients_leaving_at_once_leaves_no_listener_behind(
    private: Callable[..., Proc], store: TaskStore, account: Account, redis: Redis
):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 3 * STORM)), hard))
    web = private("web")
    assert web.process is not None
    ids = [(await store.create("demo")).id for _ in range(STORM)]
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        baseline = rss_kib(web.process.pid)
        await storm(web.port, account.access, ids)
        await settles(http, web.process.pid, "taskstream_open_streams", 0)
        await settles(
            http, web.process.pid, "taskstream_hub_channels", 1
        )  # revocations' channel stays
        after_one = rss_kib(web.process.pid)
        await storm(web.port, account.access, ids)  # again: nothing may pile up
        await settles(http, web.process.pid, "taskstream_open_streams", 0)
        await settles(
            http, web.process.pid, "taskstream_hub_channels", 1
        )  # revocations' channel stays
        after_two = rss_kib(web.process.pid)
    subscribed = await redis.pubsub_shardnumsub(*(channel(t) for t in ids[:50]))
    assert all(count == 0 for _, count in subscribed)
    # 2,000 streams hold ~100 MiB (bench figures); a leak would keep it
    assert (after_two - after_one) / 1024 < 25, (baseline, after_one, after_two)


async def test_a_client_that_stops_reading_holds_the_server_in_bounded_memory_then_catches_up(
    private: Callable[..., Proc], store: TaskStore, account: Account, redis: Redis
):
    web = private("web", TASKSTREAM_LISTENER_QUEUE="16")
    assert web.process is not None
    task = await store.create("demo")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow, small window
    sock.connect(("127.0.0.1", web.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        f"GET /api/v1/tasks/{task.id}/events HTTP/1.0\r\nHost: t\r\n"
        f"Authorization: Bearer {account.access}\r\n\r\n".encode()
    )
    while not (await reader.readline()).startswith(b"event: status"):
        pass
    before = rss_kib(web.process.pid)
    stage = "x" * 20_000  # ~20 KB an event: 18 MB in all, far more than the socket holds
    for step in range(900):  # fewer than the 1,000 events a task's stream keeps
        await store.progress(task.id, 0, {"progress": step // 9, "currentStage": stage})
    done = await store.finish(task.id, 0, None, "/r")
    held = rss_kib(web.process.pid) - before
    assert held / 1024 < 15, held  # not the 20 MB the client has not read
    ids: list[str | None] = [task.last_event_id]
    async with asyncio.timeout(WAIT * 3):
        while line := await reader.readline():  # now it reads: everything, in order
            if line.startswith(b"id: "):
                ids.append(line[4:-1].decode())
    writer.close()
    await writer.wait_closed()
    assert ids[-1] == done.id
    await assert_no_gap(redis, task.id, ids)
