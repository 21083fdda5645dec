"""Server-Sent Events: one task (`/api/v1/tasks/{id}/events`), many
(`/api/v1/events?tasks=a,b`), or all of the caller's (`/api/v1/events`).

A stream ends after the terminal event. `EventSource` reconnects by itself whenever a
stream ends, so a reconnect whose `Last-Event-ID` already covers the terminal event is
answered `204 No Content`, which tells it to stop. The id may also come as `lastEventId`
in the query, for clients that open a fresh `EventSource`, which also cannot send an
`Authorization` header: it may carry a single-use `?ticket=` instead (`server/auth.py`).
When the access token expires, the stream ends with a `reauthenticate` event.

The response is our own `EventStream`, not sse-starlette's `EventSourceResponse`, whose
wire format it keeps (`text/event-stream`, `: ping` comments, no buffering). Deliberate
divergences, for what a stream costs at thousands of them:

- Two tasks per stream instead of an anyio task group of four: the body is sent from the
  request's own task; one more task waits for the client to go (`http.disconnect`) and
  cancels the body when the client has gone. The heartbeat comment is sent on the tick
  of one timer for all streams (`heartbeat.py`), not a timer per stream. The task group
  was most of the CPU of opening a stream and of its memory (`python -m bench.storm`).
- No shutdown listener of its own: on SIGTERM the process's `Stopping` closes the hub, and
  every stream ends with `reconnect` through its events (`server/serve.py`).
- It gives back its place at the gate and stops watching its login however it ends, even
  when the client is gone before the first byte.
- Its body runs outside Starlette's middleware and routing: the response sends its start
  through them (the security headers are added there), then hands itself over
  (`handover.py`), freeing the frames of the request's way through the stack.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from jobs.infra import keys
from jobs.record.tasks import ReadRefused
from jobs.record.values import Event
from server.auth import Principal, identify, session_revoked, watch_login
from server.errors import ApiError, NotFound
from server.realtime.follow import (
    RECONNECT,
    RECONNECT_MS,
    AllCursor,
    NoSuchTask,
    Opened,
    follow,
    follow_all,
    follow_many,
    has_seen_end,
    open_stream,
    parse_cursor,
)
from server.realtime.gate import Admission
from server.realtime.handover import hand_over
from server.realtime.heartbeat import Heartbeat
from server.realtime.sessions import Watch
from server.state import app_state

MAX_TASKS_PER_STREAM = 100
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx and its kind: pass every event on at once
]
PING: Message = {"type": "http.response.body", "body": b": ping\n\n", "more_body": True}


def encode(event: Event) -> bytes:
    if event is RECONNECT:  # no id: the client's Last-Event-ID must stay as it was
        return f"retry: {RECONNECT_MS}\nevent: {event.type}\ndata: {event.data}\n\n".encode()
    if not event.id:  # `reauthenticate`: no id either
        return f"event: {event.type}\ndata: {event.data}\n\n".encode()
    return f"id: {event.id}\nevent: {event.type}\ndata: {event.data}\n\n".encode()


def last_event_id(request: Request) -> str | None:
    return request.headers.get("last-event-id") or request.query_params.get("lastEventId")


class EventStream(Response):
    """An SSE answer: `body`'s chunks as they come, a heartbeat comment when quiet.
    (A `Response` for the router's sake; it renders nothing up front.)"""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        *,
        heartbeat: Heartbeat,
        admission: Admission,
        watch: Watch,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(status_code=200)
        self.raw_headers = list(HEADERS)  # ours, in place of the empty body's
        self.events = body
        self.heartbeat = heartbeat
        self.send: Send | None = None
        self.admission = admission
        self.watch = watch
        self.on_close = on_close
        self.quiet = True  # nothing sent since the last heartbeat
        self.streaming = False
        self.gone = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        except BaseException:
            await self.release()
            raise
        if not hand_over(scope, self):  # an app without `with_handover`: stream from here
            await self.run(receive, send)

    async def run(self, receive: Receive, send: Send) -> None:
        """The body, once the answer has started, until it ends or the client goes."""
        me = asyncio.current_task()
        assert me is not None
        watcher: asyncio.Task[None] | None = None

        def on_gone(_: asyncio.Task[None]) -> None:
            if self.gone and self.streaming:
                me.cancel()

        try:
            self.streaming = True
            self.send = send
            self.heartbeat.add(self)
            watcher = asyncio.create_task(self._watch(receive))
            watcher.add_done_callback(on_gone)
            async for chunk in self.events:
                self.quiet = False
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            self.streaming = False
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not self.gone or me.uncancel() > 0:
                raise  # not the client's going: the server's
        finally:
            self.streaming = False
            self.heartbeat.discard(self)
            if watcher is not None:
                watcher.remove_done_callback(on_gone)
                watcher.cancel()
            await self.release()

    async def release(self) -> None:
        """Give back what the stream holds (however it ended, even before its body)."""
        self.admission.release()
        self.watch.close()
        if self.on_close is not None:
            self.on_close()
        await self.events.aclose()  # type: ignore[attr-defined]

    async def _watch(self, receive: Receive) -> None:
        """Until the client goes."""
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone = True

    async def ping(self) -> None:
        """The heartbeat comment (`Heartbeat`: when the stream has been quiet)."""
        if self.streaming and self.send is not None:
            with suppress(Exception):  # the client is going: the watcher will know
                await self.send(PING)


def stream(
    request: Request,
    admission: Admission,
    watch: Watch,
    events: Callable[[Watch], AsyncIterator[Event]],
    on_close: Callable[[], None] | None = None,
) -> Response:
    """The SSE answer carrying `events`, bounded by the caller's login (`watch`); from
    here on the answer gives back `admission`, closes `watch` and runs `on_close` however
    it ends (even if `events` never started)."""
    state = app_state(request)
    gate = state["gate"]

    async def body() -> AsyncIterator[bytes]:
        async for event in events(watch):
            yield encode(event)
            gate.delivered["sse"] += 1

    return EventStream(
        body(), heartbeat=state["heartbeat"], admission=admission, watch=watch, on_close=on_close
    )


async def task_events(request: Request) -> Response:
    """One task's stream. Opening it costs one round trip to Redis once the channel is
    subscribed: the login's revocation, the task (its owner) and the first batch are one
    read (`TaskStore.replay`), made after the subscription and the login's watch, so
    nothing falls between."""
    principal = await identify(request, ticket=True)
    task_id, last_id = request.path_params["task_id"], last_event_id(request)
    state = app_state(request)
    hub, store = state["hub"], state["store"]
    state["gate"].check(principal.user_id)  # a full process refuses before any read
    watch = await watch_login(request, principal, guarded=True)
    admission: Admission | None = None
    opened: Opened | None = None
    handed = False
    try:
        admission = await state["gate"].admit("sse", principal.user_id)
        guard = keys.revoked(principal.family)
        try:
            opened = await open_stream(hub, store, task_id, principal.user_id, last_id, guard)
        except ReadRefused:
            raise session_revoked() from None
        except NoSuchTask:
            raise NotFound("no such task", code="TASK_NOT_FOUND") from None
        if opened is None:
            return Response(status_code=204)  # the client has had the task's end
        events = partial(follow, hub, store, task_id, last_id, opened=opened)
        answer = stream(request, admission, watch, events, opened.close)
        handed = True  # from here on, the answer gives everything back
        return answer
    finally:
        if not handed:  # refused, failed, or nothing to follow
            watch.close()
            if admission is not None:
                admission.release()
            if opened is not None:
                opened.close()


async def many_events(request: Request) -> Response:
    principal = await identify(request, ticket=True)
    ids = [t for t in request.query_params.get("tasks", "").split(",") if t]
    if len(ids) > MAX_TASKS_PER_STREAM or len(set(ids)) != len(ids):
        raise ApiError(
            f"at most {MAX_TASKS_PER_STREAM} distinct tasks per stream", code="TOO_MANY_TASKS"
        )
    gate = app_state(request)["gate"]
    gate.check(principal.user_id)  # a full process: before any read
    watch = await watch_login(request, principal)  # before the reads: none outruns it
    admission: Admission | None = None
    answer: Response | None = None
    try:
        admission = await gate.admit("sse", principal.user_id)
        answer = await _many(request, principal, admission, watch, ids)
    finally:
        if not isinstance(answer, EventStream):  # refused, failed or 204: nothing to follow
            watch.close()
            if admission is not None:
                admission.release()
    return answer


async def _many(
    request: Request, principal: Principal, admission: Admission, watch: Watch, ids: list[str]
) -> Response:
    state = app_state(request)
    if not ids:  # every task of the caller's, new ones included
        since = AllCursor.parse(last_event_id(request))
        everything = partial(follow_all, state["hub"], state["store"], principal.user_id, since)
        return stream(request, admission, watch, everything)
    tasks = [await state["store"].owned(t, principal.user_id) for t in ids]
    missing = [t for t, task in zip(ids, tasks, strict=True) if task is None]
    if missing:
        raise NotFound("no such task", code="TASK_NOT_FOUND", details={"taskIds": missing})
    cursor = parse_cursor(last_event_id(request), len(ids))
    found = [t for t in tasks if t is not None]
    if all(has_seen_end(t, c) for t, c in zip(found, cursor, strict=True)):
        return Response(status_code=204)
    events = partial(follow_many, state["hub"], state["store"], ids, cursor)
    return stream(request, admission, watch, events)


routes = [
    Route("/api/v1/tasks/{task_id}/events", task_events),
    Route("/api/v1/events", many_events),
]
