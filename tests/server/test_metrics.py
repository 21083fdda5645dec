"""`/metrics`: task outcomes, durations and polls across processes; this process's streams."""

from __future__ import annotations

import re
from typing import Any

import httpx
from redis.asyncio import Redis

from jobs.metrics import WORKERS
from jobs.record.tasks import TaskStore
from tests.support import SseStream, start_demo, wait_for_status

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


async def test_task_outcomes_durations_and_polls_are_counted(client: httpx.AsyncClient):
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
    assert grew("taskstream_status_polls_total", 2)
    workers = [k for k in after if k[0] == "taskstream_worker_jobs"]
    assert any('state="jobs_complete"' in labels for _, labels in workers)


async def test_open_streams_and_delivered_events_are_this_process_own(
    client: httpx.AsyncClient, store: TaskStore
):
    task = await store.create("demo")
    before = await scrape(client)
    async with SseStream(client, f"/api/v1/tasks/{task.id}/events") as stream:
        await stream.next()
        during = await scrape(client)
    assert value(during, "taskstream_open_streams", transport="sse") >= 1
    assert value(during, "taskstream_events_delivered_total", transport="sse") > value(
        before, "taskstream_events_delivered_total", transport="sse"
    )
    assert value(during, "taskstream_hub_channels") >= 2  # the task and revocations
    assert ("taskstream_hub_lag_milliseconds_count", frozenset()) in during


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
