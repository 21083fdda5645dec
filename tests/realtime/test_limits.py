"""A web process past its stream limit refuses new streams instead of growing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
import websockets

from jobs.tasks import TaskStore
from tests.support import WAIT, Proc, SseStream, WsClient


async def test_past_the_limit_sse_gets_503_with_retry_after_and_ws_1013(
    private: Callable[..., Proc], store: TaskStore, auth: dict[str, str]
):
    web = private("web", TASKSTREAM_MAX_STREAMS="2")
    task = await store.create("demo")
    url = f"/api/v1/tasks/{task.id}/events"
    async with httpx.AsyncClient(base_url=web.url, headers=auth, timeout=WAIT) as http:
        async with SseStream(http, url) as first, SseStream(http, url):
            await first.next()
            refused = await http.get(url)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"
            assert refused.json()["error"]["code"] == "STREAMS_EXHAUSTED"
            async with WsClient(web.url, auth) as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.next()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        async with asyncio.timeout(WAIT):  # the closed streams free their places
            while True:
                async with http.stream("GET", url) as again:
                    if again.status_code == 200:
                        break
                await asyncio.sleep(0.05)
