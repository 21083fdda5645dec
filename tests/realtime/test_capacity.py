"""A web process at the edge of its open-files limit: more streams asked for than it can
hold, each client gets its stream or a 503 with Retry-After (none hangs, none is reset),
the open streams keep delivering every event, and places freed are taken again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import httpx
import pytest

from jobs.record.tasks import TaskStore
from server.realtime.gate import RESERVE_MIN
from tests.support import WAIT, Proc, SseEvent, own_metric, sse_events

OPEN_FILES = 400  # the web process's limit, soft and hard: it cannot raise it
EXTRA = 60  # clients past what it can hold


async def open_stream(
    http: httpx.AsyncClient, url: str, stack: AsyncExitStack
) -> tuple[int, str | None, AsyncIterator[SseEvent] | None]:
    """The answer's status and Retry-After; for a stream, its events (kept open)."""
    response = await stack.enter_async_context(http.stream("GET", url))
    if response.status_code != 200:
        await response.aread()
        return response.status_code, response.headers.get("retry-after"), None
    events = sse_events(response)
    assert (await anext(events)).event == "status"
    return 200, None, events


@pytest.mark.timeout(120)
async def test_past_what_it_can_hold_each_client_gets_its_stream_or_a_503(
    private: Callable[..., Proc], store: TaskStore, auth: dict[str, str]
):
    web = private("web", open_files=OPEN_FILES)
    task = await store.create("demo")
    url = f"/api/v1/tasks/{task.id}/events"
    limits = httpx.Limits(max_connections=OPEN_FILES * 2)
    async with httpx.AsyncClient(
        base_url=web.url, headers=auth, timeout=WAIT, limits=limits
    ) as http:
        metrics = (await http.get("/metrics")).text
        assert web.process is not None
        found = own_metric(metrics, web.process.pid, "taskstream_stream_capacity")
        assert found is not None
        capacity = int(found)
        assert 0 < capacity <= OPEN_FILES - RESERVE_MIN
        async with AsyncExitStack() as stack:
            async with asyncio.timeout(WAIT):
                answers = await asyncio.gather(
                    *(open_stream(http, url, stack) for _ in range(capacity + EXTRA))
                )
            statuses = [status for status, _, _ in answers]
            assert (statuses.count(200), statuses.count(503)) == (capacity, EXTRA)
            assert all(1 <= int(wait or 0) <= 5 for status, wait, _ in answers if status == 503)
            assert (await http.get("/api/v1/tasks?limit=1")).status_code == 200  # still served
            streams = [events for _, _, events in answers if events is not None]
            for value in (10, 20, 30):
                await store.progress(task.id, 0, {"progress": value})
            async with asyncio.timeout(WAIT):
                for events in streams:  # every open stream, every event
                    got = [(await anext(events)).data["progress"] for _ in range(3)]
                    assert got == [10, 20, 30]
            await stack.aclose()  # every stream closes: their places are free again
            async with asyncio.timeout(WAIT):
                while True:
                    async with http.stream("GET", url) as again:
                        if again.status_code == 200:
                            break
                    await asyncio.sleep(0.05)
