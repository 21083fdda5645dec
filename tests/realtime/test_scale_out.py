"""Two web processes and two workers on one Redis: any web serves any task."""

from __future__ import annotations

import signal
from collections.abc import Callable

import httpx
from redis.asyncio import Redis

from tests.support import WAIT, Proc, SseStream, assert_no_gap, start_demo


async def test_a_client_whose_web_process_dies_resumes_on_another_with_nothing_lost(
    private: Callable[..., Proc], redis: Redis, auth: dict[str, str]
):
    web_a, web_b = private("web"), private("web")
    private("worker")
    private("worker")
    async with httpx.AsyncClient(base_url=web_a.url, headers=auth, timeout=WAIT) as a:
        task_id = await start_demo(a, steps=30, stepSeconds=0.1)
        async with SseStream(a, f"/api/v1/tasks/{task_id}/events") as stream:
            before = await stream.take(5)
            web_a.stop(signal.SIGKILL)
    async with httpx.AsyncClient(base_url=web_b.url, headers=auth, timeout=WAIT) as b:
        headers = {"Last-Event-ID": before[-1].id or ""}
        async with SseStream(b, f"/api/v1/tasks/{task_id}/events", headers) as stream:
            after = await stream.rest()
    assert after[-1].event == "completed"
    await assert_no_gap(redis, task_id, [e.id for e in before + after])
