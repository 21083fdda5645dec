"""Server-Sent Events: one task (`/api/v1/tasks/{id}/events`), many
(`/api/v1/events?tasks=a,b`), or all of the caller's (`/api/v1/events`).

A stream ends after the terminal event. `EventSource` reconnects by itself whenever a
stream ends, so a reconnect whose `Last-Event-ID` already covers the terminal event is
answered `204 No Content`, which tells it to stop. The id may also come as `lastEventId`
in the query, for clients that open a fresh `EventSource`, which also cannot send an
`Authorization` header: it may carry a single-use `?ticket=` instead (`server/auth.py`).
When the access token expires, the stream ends with a `reauthenticate` event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from jobs.record.tasks import Event
from server.access import load_task
from server.auth import Principal, authenticate
from server.errors import ApiError, NotFound
from server.realtime.follow import (
    RECONNECT,
    RECONNECT_MS,
    AllCursor,
    follow,
    follow_all,
    follow_many,
    has_seen_end,
    parse_cursor,
)
from server.realtime.gate import Admission
from server.realtime.sessions import Watch
from server.state import app_state

MAX_TASKS_PER_STREAM = 100
SHUTDOWN_GRACE_S = 2.0


def encode(event: Event) -> bytes:
    if event is RECONNECT:  # no id: the client's Last-Event-ID must stay as it was
        return f"retry: {RECONNECT_MS}\nevent: {event.type}\ndata: {event.data}\n\n".encode()
    if not event.id:  # `reauthenticate`: no id either
        return f"event: {event.type}\ndata: {event.data}\n\n".encode()
    return f"id: {event.id}\nevent: {event.type}\ndata: {event.data}\n\n".encode()


def last_event_id(request: Request) -> str | None:
    return request.headers.get("last-event-id") or request.query_params.get("lastEventId")


class HeldStream(EventSourceResponse):
    """An SSE answer that gives back its place at the gate and stops watching its login
    however it ends: even a client gone before the first byte, whose body never starts."""

    def __init__(self, *args: Any, admission: Admission, watch: Watch, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.admission = admission
        self.watch = watch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.admission.release()
            self.watch.close()


def stream(
    request: Request, principal: Principal, events: Callable[[Watch], AsyncIterator[Event]]
) -> Response:
    """The SSE answer carrying `events`, bounded by the caller's login (`Watch`)."""
    state = app_state(request)
    gate = state["gate"]
    admission = gate.admit("sse", principal.user_id)
    watch = state["sessions"].open(principal.family, principal.expires_at)

    async def body() -> AsyncIterator[bytes]:
        async for event in events(watch):
            yield encode(event)
            gate.delivered["sse"] += 1

    return HeldStream(
        body(),
        admission=admission,
        watch=watch,
        ping=state["settings"].heartbeat_s,
        headers={"Cache-Control": "no-cache"},
        # on shutdown, time for the stream to say `reconnect` before it is cut
        shutdown_grace_period=SHUTDOWN_GRACE_S,
    )


async def task_events(request: Request) -> Response:
    task = await load_task(request, ticket=True)
    principal = await authenticate(request, ticket=True)
    last_id = last_event_id(request)
    if has_seen_end(task, last_id):
        return Response(status_code=204)
    state = app_state(request)
    return stream(
        request, principal, partial(follow, state["hub"], state["store"], task.id, last_id)
    )


async def many_events(request: Request) -> Response:
    principal = await authenticate(request, ticket=True)
    ids = [t for t in request.query_params.get("tasks", "").split(",") if t]
    state = app_state(request)
    if not ids:  # every task of the caller's, new ones included
        since = AllCursor.parse(last_event_id(request))
        everything = partial(follow_all, state["hub"], state["store"], principal.user_id, since)
        return stream(request, principal, everything)
    if len(ids) > MAX_TASKS_PER_STREAM or len(set(ids)) != len(ids):
        raise ApiError(
            f"at most {MAX_TASKS_PER_STREAM} distinct tasks per stream", code="TOO_MANY_TASKS"
        )
    tasks = [await state["store"].owned(t, principal.user_id) for t in ids]
    missing = [t for t, task in zip(ids, tasks, strict=True) if task is None]
    if missing:
        raise NotFound("no such task", code="TASK_NOT_FOUND", details={"taskIds": missing})
    cursor = parse_cursor(last_event_id(request), len(ids))
    found = [t for t in tasks if t is not None]
    if all(has_seen_end(t, c) for t, c in zip(found, cursor, strict=True)):
        return Response(status_code=204)
    events = partial(follow_many, state["hub"], state["store"], ids, cursor)
    return stream(request, principal, events)


routes = [
    Route("/api/v1/tasks/{task_id}/events", task_events),
    Route("/api/v1/events", many_events),
]
