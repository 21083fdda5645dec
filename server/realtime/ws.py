"""WebSocket `/api/v1/ws`: follow many tasks over one connection, and cancel them.

Client frames (JSON):
    {"type": "subscribe", "taskId": "…", "lastEventId": "…"}   lastEventId optional
    {"type": "unsubscribe", "taskId": "…"}
    {"type": "cancel", "taskId": "…"}
Server frames carry the task events as SSE does, with `id` and `event` inside:
    {"id": "…", "event": "progress", "data": {…}}
and replies without an id: `subscribed`, `unsubscribed`, `cancelAccepted`, `error`
(`{"event": "error", "taskId": …, "error": {"code", "message"}}`).
The connection stays open after a task ends; its subscription ends with its terminal event.
When Redis cannot be read (an outage) the server sends `reconnect` and closes with 1013; the
client comes back and resubscribes with each task's `lastEventId`, as after 1012.

The handshake is authenticated (`Authorization: Bearer`, or `?ticket=` from a browser);
without it the upgrade is refused with a 401 envelope. Another user's task is answered
like an unknown one. When the access token expires the server sends `reauthenticate`
and closes with 4401; the client reconnects with a fresh token and resubscribes with
each task's `lastEventId`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import suppress
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.types import Receive, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from jobs.infra.connections import is_outage
from jobs.record.ids import is_task_id
from jobs.record.tasks import WriteRejected
from jobs.record.values import Event, Task
from jobs.runtime import intake
from server.auth import Principal, identify, watch_login
from server.cors import origin_allowed
from server.errors import ApiError, Forbidden, Unprocessable, api_error_response
from server.realtime.follow import (
    REAUTHENTICATE,
    RECONNECT,
    RECONNECT_MS,
    REVOKED,
    NoSuchTask,
    Opened,
    follow,
    open_stream,
)
from server.realtime.gate import Admission
from server.realtime.handover import hand_over
from server.realtime.sessions import Watch
from server.responses import read_json
from server.state import AppState, app_state

logger = logging.getLogger(__name__)

MAX_SUBSCRIPTIONS = 100


def encode(event: Event) -> str:
    return f'{{"id":"{event.id}","event":"{event.type}","data":{event.data}}}'


class Session:
    """One WebSocket connection and its subscriptions."""

    def __init__(
        self,
        websocket: WebSocket,
        state: AppState,
        principal: Principal,
        watch: Watch,
        admission: Admission,
    ) -> None:
        self.websocket = websocket
        self.state = state
        self.principal = principal
        self.watch = watch
        self.admission = admission
        self.closed = False
        self.subscriptions: dict[str, asyncio.Task[None]] = {}
        self._send_lock = asyncio.Lock()

    async def send(self, frame: str | dict[str, Any]) -> None:
        # a reply may echo what the client sent: escaped, a lone surrogate is valid JSON
        text = frame if isinstance(frame, str) else json.dumps(frame)
        async with self._send_lock:
            await self.websocket.send_text(text)

    async def error(self, code: str, message: str, task_id: Any = None) -> None:
        await self.send(
            {"event": "error", "taskId": task_id, "error": {"code": code, "message": message}}
        )

    async def serve(self) -> None:
        """Answer the client's frames until it goes away."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            text = message.get("text")
            if text is None:
                await self.error("BAD_MESSAGE", "frames must be text: JSON objects")
                continue
            try:
                message = read_json(text)
            except Unprocessable as refused:
                await self.error("INVALID_JSON", f"frames must be JSON objects: {refused}")
                continue
            await self.handle(message)

    async def handle(self, message: Any) -> None:
        if self.closed or self.watch.revoked:
            return  # the login has ended: nothing more is done for it
        if not isinstance(message, dict) or message.get("type") not in {
            "subscribe",
            "unsubscribe",
            "cancel",
        }:
            await self.error("BAD_MESSAGE", "expected {type: subscribe|unsubscribe|cancel, taskId}")
            return
        task_id = message.get("taskId")
        if not isinstance(task_id, str) or not is_task_id(task_id):
            await self.error("TASK_NOT_FOUND", "no such task", task_id)
            return
        if message["type"] == "subscribe":
            last_id = message.get("lastEventId")
            await self.subscribe(task_id, last_id if isinstance(last_id, str) else None)
        elif message["type"] == "unsubscribe":
            await self.unsubscribe(task_id)
        else:
            await self.cancel(task_id)

    async def subscribe(self, task_id: str, last_id: str | None) -> None:
        if task_id in self.subscriptions:
            await self.error("ALREADY_SUBSCRIBED", "already subscribed to this task", task_id)
            return
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            await self.error("TOO_MANY_SUBSCRIPTIONS", "unsubscribe from a task first", task_id)
            return
        # as an SSE stream opens (the socket's login was checked at the handshake; its
        # revocation ends the socket through its `Watch`)
        state = self.state
        try:
            opened = await open_stream(
                state["hub"], state["store"], task_id, self.principal.user_id, last_id
            )
        except NoSuchTask:
            await self.error("TASK_NOT_FOUND", "no such task", task_id)
            return
        except Exception as error:
            if not is_outage(error):
                raise
            await self.try_again_later()
            return
        try:
            await self.send({"event": "subscribed", "taskId": task_id})
        except BaseException:
            if opened is not None:
                opened.close()
            raise
        if opened is None:  # the client has had the task's end
            await self.send({"event": "unsubscribed", "taskId": task_id, "reason": "ended"})
            return
        self.subscriptions[task_id] = asyncio.create_task(self._pump(task_id, last_id, opened))

    async def owned(self, task_id: str) -> Task | None:
        """The caller's task, or None after telling them it does not exist."""
        task = await self.state["store"].owned(task_id, self.principal.user_id)
        if task is None:
            await self.error("TASK_NOT_FOUND", "no such task", task_id)
            return None
        return task

    async def _pump(self, task_id: str, last_id: str | None, opened: Opened) -> None:
        state = self.state
        try:
            events = follow(state["hub"], state["store"], task_id, last_id, self.watch, opened)
            async for event in events:
                if event is RECONNECT:  # shutting down: 1012, "service restart"
                    await self.end({"event": "reconnect", "retryMs": RECONNECT_MS}, 1012)
                    return
                if event in (REAUTHENTICATE, REVOKED):
                    await self.end_login()
                    return
                await self.send(encode(event))
                self.state["gate"].delivered["ws"] += 1
            await self.send({"event": "unsubscribed", "taskId": task_id, "reason": "ended"})
        except Exception as error:
            if is_outage(error):
                await self.try_again_later()
            else:  # a subscription left silent would never end: the client comes back
                logger.exception("a WebSocket subscription failed", extra={"taskId": task_id})
                with suppress(Exception):  # the client may be gone already
                    await self.end({"event": "reconnect", "retryMs": RECONNECT_MS}, 1011)
        finally:
            opened.close()  # also when cancelled before `follow` began
            self.subscriptions.pop(task_id, None)

    async def unsubscribe(self, task_id: str) -> None:
        pump = self.subscriptions.pop(task_id, None)
        if pump is not None:
            pump.cancel()
            with suppress(asyncio.CancelledError):
                await pump
        await self.send({"event": "unsubscribed", "taskId": task_id, "reason": "asked"})

    async def end_login(self) -> None:
        """The login has expired (4401: refresh, then come back) or was revoked (4403)."""
        if self.watch.revoked:
            await self.end({"event": "revoked", "code": "TOKEN_REVOKED"}, 4403)
        else:
            await self.end({"event": "reauthenticate", "code": "TOKEN_EXPIRED"}, 4401)

    async def watch_login(self) -> None:
        """End the connection when its login ends, subscribed to anything or not."""
        await self.watch.until_ended()
        with suppress(Exception):  # the client may be gone already
            await self.end_login()

    async def try_again_later(self) -> None:
        """Redis could not be read (an outage): the socket ends with `reconnect` and 1013,
        "try again later"; the client comes back and resubscribes with its last ids (a
        subscription left silent would never end)."""
        logger.warning("Redis unreachable: a WebSocket is told to reconnect")
        await self.end({"event": "reconnect", "retryMs": RECONNECT_MS}, 1013)

    async def end(self, frame: dict[str, Any], code: int) -> None:
        """Say why, then close (once, whichever subscription gets there first)."""
        if self.closed:
            return
        self.closed = True
        await self.send(frame)
        await self.websocket.close(code=code)

    async def cancel(self, task_id: str) -> None:
        state = self.state
        if (task := await self.owned(task_id)) is None:
            return
        kind = state["kinds"][task.snapshot["kind"]]
        try:
            await intake.cancel(state["store"], state["queue"], state["settings"], kind, task_id)
        except WriteRejected as rejected:
            await self.error(
                "TASK_FINISHED", f"the task has already ended ({rejected.status})", task_id
            )
            return
        await self.send({"event": "cancelAccepted", "taskId": task_id})

    async def run(self, receive: Receive, send: Send) -> None:
        """Once accepted, until the connection ends (`handover.Handed`)."""
        scope = self.websocket.scope
        # the handshake's headers have served (the login is known): not kept for its life
        scope["headers"] = []
        websocket = WebSocket(scope, receive, send)
        websocket.client_state = websocket.application_state = WebSocketState.CONNECTED
        self.websocket = websocket
        ending = asyncio.create_task(self.watch_login())
        try:
            await self.serve()
        except WebSocketDisconnect:
            pass
        finally:
            ending.cancel()
            try:
                await self.close()
            finally:
                await self.release()

    async def release(self) -> None:
        """Give back the connection's place at the gate, stop watching its login."""
        self.admission.release()
        self.watch.close()

    async def close(self) -> None:
        pumps = list(self.subscriptions.values())
        for pump in pumps:
            pump.cancel()
        for pump in pumps:
            with suppress(asyncio.CancelledError, Exception):
                await pump


async def endpoint(websocket: WebSocket) -> None:
    state = app_state(websocket)
    if not origin_allowed(websocket.scope, state["settings"]):  # a page elsewhere: never
        refused = Forbidden("this origin may not open a WebSocket here", code="ORIGIN_NOT_ALLOWED")
        await websocket.send_denial_response(api_error_response(refused))
        return
    try:
        principal = await identify(websocket, ticket=True)
        state["gate"].check(principal.user_id)  # a full process refuses before any read
        watch = await watch_login(websocket, principal)  # before anything can outrun it
    except ApiError as refused:  # 401, 429, or 503 when full: the handshake's answer
        await websocket.send_denial_response(api_error_response(refused))
        return
    try:
        admission = await state["gate"].admit("ws", principal.user_id)
    except ApiError as refused:  # filled up meanwhile, or the user's limit
        watch.close()
        await websocket.send_denial_response(api_error_response(refused))
        return
    except BaseException:
        watch.close()
        raise
    session = Session(websocket, state, principal, watch, admission)
    try:
        await websocket.accept()
    except BaseException:
        await session.release()
        raise
    # the rest runs once Starlette's stack has returned (`handover.py`)
    if not hand_over(websocket.scope, session):
        await session.run(websocket.receive, websocket.send)


routes = [WebSocketRoute("/api/v1/ws", endpoint)]
