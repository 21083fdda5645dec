"""A web process asked to stop tells its streams to reconnect, and exits in bounded time."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

import httpx
import websockets
from redis.asyncio import Redis

from tests.support import WAIT, Proc, SseStream, WsClient, assert_no_gap, start_demo


async def test_sigterm_sends_reconnect_on_sse_and_ws_then_another_web_resumes(
    private: Callable[..., Proc], redis: Redis, auth: dict[str, str]
):
    leaving, staying = private("web"), private("web")
    private("worker")
    assert leaving.process is not None
    async with httpx.AsyncClient(base_url=leaving.url, headers=auth, timeout=WAIT) as http:
        task_id = await start_demo(http, steps=25, stepSeconds=0.1)
        async with (
            SseStream(http, f"/api/v1/tasks/{task_id}/events") as sse,
            WsClient(leaving.url, auth) as ws,
        ):
            await ws.send(type="subscribe", taskId=task_id)
            await ws.until("progress")
            before = await sse.take(3)
            leaving.process.send_signal(signal.SIGTERM)
            tail = await sse.rest()
            frames = []
            try:
                async with asyncio.timeout(WAIT):
                    while True:
                        frames.append(await ws.next())
            except websockets.ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1012
    exit_code = await asyncio.to_thread(leaving.process.wait, WAIT)
    # uvicorn re-raises the signal once it has shut down, so the exit is "killed by SIGTERM"
    assert exit_code in (0, -signal.SIGTERM)
    assert (tail[-1].event, tail[-1].id) == ("reconnect", None)
    assert tail[-1].data == {"reason": "shutdown", "retryMs": 1000}
    assert frames[-1] == {"event": "reconnect", "retryMs": 1000}

    seen = [*before, *tail[:-1]]
    async with httpx.AsyncClient(base_url=staying.url, headers=auth, timeout=WAIT) as http:
        headers = {"Last-Event-ID": seen[-1].id or ""}
        async with SseStream(http, f"/api/v1/tasks/{task_id}/events", headers) as sse:
            rest = await sse.rest()
    assert rest[-1].event == "completed"
    await assert_no_gap(redis, task_id, [e.id for e in seen + rest])
