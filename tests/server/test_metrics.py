"""`/metrics`: task outcomes, durations and polls across processes; this process's streams."""

from __future__ import annotations

import asyncio
import re
import socket
from typing import Any

import httpx
from redis.asyncio import Redis

from jobs.infra.metrics import WORKERS
from jobs.record.tasks import TaskStore
from taskstream.loadtest.report import children
from tests.support import WAIT, Proc, SseStream, start_demo, wait_for_status

SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[str]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in response.text.splitlines():
        if line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        labels = frozenset(match[2].split(",")) if match[2] else frozenset()
        samples[(match[1], labels)] = float(match[3])
    return samples


def value(samples: dict[tuple[str, frozenset[str]], float], name: str, **labels: str) -> float:
    wanted = frozenset(f'{k}="{v}"' for k, v in labels.items())
    return samples.get((name, wanted), 0.0)


def process(web: Proc) -> str:
    """The `process` label of the web process's own figures."""
    assert web.process is not None
    return f"{socket.gethostname()}:{web.process.pid}"


async def test_task_outcomes_durations_and_polls_are_counted(client: httpx.AsyncClient, web: Proc):
    before = await scrape(client)
    done = await start_demo(client, steps=2, stepSeconds=0.05)
    failing = await start_demo(client, steps=3, stepSeconds=0.05, failAtStep=2)
    cancelled = await start_demo(client, steps=100, stepSeconds=0.1)
    await client.post(f"/api/v1/tasks/{cancelled}/cancel")
    for task_id in (done, failing):
        await wait_for_status(client, task_id, {"completed", "failed"})
    after = await scrape(client)

    def grew(name: str, by: float, **labels: str) -> bool:
        return value(after, name, **labels) - value(before, name, **labels) >= by

    assert grew("taskstream_tasks_created_total", 3, kind="demo")
    finished = "taskstream_tasks_finished_total"
    assert grew(finished, 1, kind="demo", status="completed", error="")
    assert grew(finished, 1, kind="demo", status="failed", error="DEMO_FAILURE")
    assert grew(finished, 1, kind="demo", status="cancelled", error="")
    assert grew("taskstream_task_duration_seconds_count", 3, kind="demo")
    assert grew("taskstream_task_duration_seconds_bucket", 3, kind="demo", le="+Inf")
    assert grew("taskstream_task_polls_count", 3, kind="demo")
    assert grew("taskstream_status_polls_total", 2, process=process(web))
    workers = [k for k in after if k[0] == "taskstream_worker_jobs"]
    assert any('state="jobs_complete"' in labels for _, labels in workers)


async def test_open_streams_and_delivered_events_are_this_process_own(
    client: httpx.AsyncClient, store: TaskStore, web: Proc
):
    task = await store.create("demo")
    own = process(web)
    before = await scrape(client)
    async with SseStream(client, f"/api/v1/tasks/{task.id}/events") as stream:
        await stream.next()
        during = await scrape(client)
    assert value(during, "taskstream_open_streams", process=own, transport="sse") >= 1
    delivered = "taskstream_events_delivered_total"
    assert value(during, delivered, process=own, transport="sse") > value(
        before, delivered, process=own, transport="sse"
    )
    assert value(during, "taskstream_hub_channels", process=own) >= 2  # task and revocations
    assert ("taskstream_hub_lag_milliseconds_count", frozenset({f'process="{own}"'})) in during


async def test_every_web_process_on_the_port_is_reported_whichever_answers(
    private: Any, store: TaskStore, auth: dict[str, str]
):
    """Two processes on one port: streams open on both; any scrape reports each process's
    own figures, labelled, and they add up to every stream open."""
    web = private("web", TASKSTREAM_WEB_PROCESSES="2")
    assert web.process is not None
    pids = children(web.process.pid)
    labels = {f"{socket.gethostname()}:{pid}" for pid in pids}
    task = await store.create("demo")
    async with httpx.AsyncClient(base_url=web.url, headers=auth, timeout=WAIT) as http:
        # 16 connections: the kernel deals them over both processes by the client's port
        streams = [SseStream(http, f"/api/v1/tasks/{task.id}/events") for _ in range(16)]
        for stream in streams:
            await stream.__aenter__()
            await stream.next()
        try:
            async with asyncio.timeout(WAIT):  # the other process's figures, 2 s at most old
                while True:
                    samples = await scrape(http)
                    open_by = {
                        p: value(samples, "taskstream_open_streams", process=p, transport="sse")
                        for p in labels
                    }
                    if sum(open_by.values()) == 16:
                        break
                    await asyncio.sleep(0.2)
        finally:
            for stream in streams:
                await stream.__aexit__()
    assert all(count > 0 for count in open_by.values()), open_by  # both held some


async def test_metrics_are_for_this_machine_or_the_holder_of_the_metrics_token(private: Any):
    web = private("web", TASKSTREAM_TRUSTED_PROXIES="127.0.0.1", TASKSTREAM_METRICS_TOKEN="m3tr1cs")
    remote = {"X-Forwarded-For": "198.51.100.7"}
    async with httpx.AsyncClient(base_url=web.url) as http:
        assert (await http.get("/metrics")).status_code == 200  # from this machine
        for headers in (remote, remote | {"Authorization": "Bearer wrong"}):
            refused = await http.get("/metrics", headers=headers)
            assert refused.status_code == 404 and refused.json()["success"] is False
        allowed = await http.get("/metrics", headers=remote | {"Authorization": "Bearer m3tr1cs"})
        assert allowed.status_code == 200 and "taskstream_open_streams" in allowed.text


async def test_a_label_value_with_a_quote_a_backslash_and_a_newline_is_escaped(
    client: httpx.AsyncClient, redis: Redis
):
    """A worker's name goes into a label: written as the text format says, never breaking
    the line it is on."""
    name = 'host"1\\b\nsecond-line'
    key = f"{WORKERS}{name}"
    await redis.hset(key, mapping={"running": "1"})  # type: ignore[misc]
    await redis.expire(key, 60)
    try:
        response = await client.get("/metrics")
        samples = await scrape(client)  # every line one sample
    finally:
        await redis.delete(key)
    assert 'worker="host\\"1\\\\b\\nsecond-line"' in response.text
    assert all(not line.startswith("second-line") for line in response.text.splitlines())
    assert any('worker="host' in "".join(labels) for _, labels in samples)
