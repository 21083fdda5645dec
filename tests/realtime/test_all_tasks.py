"""`GET /api/v1/events` with no `tasks`: every task of the caller's, new ones included."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from server.realtime.follow import AllCursor
from tests.support import (
    WAIT,
    Proc,
    SseEvent,
    SseStream,
    assert_no_gap,
    signup,
    start_demo,
    wait_for_status,
)


@asynccontextmanager
async def new_user(web: Proc) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a new user whose only task so far (the verification mail) has ended."""
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)
        http.headers.update(user.headers)
        await wait_for_status(http, user.signup_task, {"completed", "failed"})
        yield http


def own_id(event: SseEvent) -> str:
    """The task's own event id inside the stream's cursor."""
    cursor = AllCursor.parse(event.id)
    assert cursor is not None, event.id
    return cursor.positions[event.data["taskId"]]


async def until_ended(sse: SseStream, tasks: set[str], seen: dict[str, list[str]]) -> None:
    """Read until every task in `tasks` has ended, filing each event's id under its task."""
    ended: set[str] = set()
    while not tasks <= ended:
        event = await sse.next()
        seen[event.data["taskId"]].append(own_id(event))
        if event.event in {"completed", "failed", "cancelled"}:
            ended.add(event.data["taskId"])


async def test_the_stream_follows_running_tasks_and_those_created_after_it_opened(
    web: Proc, worker: Proc, redis: object
):
    async with new_user(web) as http:
        stranger = await signup(http)
        stranger_http = httpx.AsyncClient(base_url=web.url, headers=stranger.headers)
        first = await start_demo(http, steps=20, stepSeconds=0.05)
        seen: dict[str, list[str]] = defaultdict(list)
        async with SseStream(http, "/api/v1/events") as sse:
            opening = await sse.next()
            assert opening.event == "status" and opening.data["taskId"] == first
            seen[first].append(own_id(opening))
            later = await start_demo(http, steps=5, stepSeconds=0.05)
            theirs = await start_demo(stranger_http, steps=1, stepSeconds=0.01)
            await until_ended(sse, {first, later}, seen)
        await stranger_http.aclose()
        assert theirs not in seen and set(seen) == {first, later}
        for task_id in (first, later):
            await assert_no_gap(redis, task_id, seen[task_id])


async def test_a_resumed_stream_picks_up_where_it_was_and_what_was_created_meanwhile(
    web: Proc, worker: Proc, redis: object
):
    async with new_user(web) as http:
        running = await start_demo(http, steps=30, stepSeconds=0.05)
        seen: dict[str, list[str]] = defaultdict(list)
        async with SseStream(http, "/api/v1/events") as sse:
            for event in await sse.take(3):
                seen[event.data["taskId"]].append(own_id(event))
                last = event.id
        assert set(seen) == {running}
        meanwhile = await start_demo(http, steps=3, stepSeconds=0.05)  # while disconnected
        async with SseStream(http, "/api/v1/events", headers={"Last-Event-ID": last or ""}) as sse:
            await until_ended(sse, {running, meanwhile}, seen)
        for task_id in (running, meanwhile):
            await assert_no_gap(redis, task_id, seen[task_id])


async def test_a_malformed_cursor_starts_afresh(web: Proc, worker: Proc):
    async with new_user(web) as http:
        task_id = await start_demo(http, steps=10, stepSeconds=0.05)
        bad = {"Last-Event-ID": "12|not-a-task=1-0"}
        async with SseStream(http, "/api/v1/events", headers=bad) as sse:
            first = await sse.next()
        assert (first.event, first.data["taskId"]) == ("status", task_id)


async def test_ended_tasks_leave_the_cursor_and_are_not_followed_again(
    web: Proc, worker: Proc, redis: object
):
    async with new_user(web) as http:
        seen: dict[str, list[str]] = defaultdict(list)
        async with SseStream(http, "/api/v1/events") as sse:
            early = await start_demo(http, steps=2, stepSeconds=0.01)
            await until_ended(sse, {early}, seen)
            later = await start_demo(http, steps=3, stepSeconds=0.05)
            events: list[SseEvent] = []
            while not events or events[-1].event != "completed":
                events.append(await sse.next())
        cursor = AllCursor.parse(events[-1].id)
        assert cursor is not None and early not in cursor.positions
        assert set(cursor.positions) <= {later}
        again = await start_demo(http, steps=2, stepSeconds=0.01)
        async with SseStream(
            http, "/api/v1/events", headers={"Last-Event-ID": events[-1].id or ""}
        ) as sse:
            first = await sse.next()
        assert first.data["taskId"] == again  # not `early`, nor `later` again
