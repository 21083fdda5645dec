"""The app's lifespan: the clients every request shares (`server/state.py`), opened at
start and closed at the end, and what to do the moment the server is told to stop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress

from starlette.applications import Starlette

from jobs.accounts import UserStore
from jobs.documents.store import export_store
from jobs.infra.config import Settings
from jobs.infra.connections import PROMPT, arq_pool, connect
from jobs.kinds import Kinds
from jobs.plans import PlanStore
from jobs.record.tasks import TaskStore
from server.realtime.figures import publish_every
from server.realtime.gate import Gate, capacity
from server.realtime.heartbeat import Heartbeat
from server.realtime.hub import Hub
from server.realtime.sessions import Sessions
from server.realtime.tally import StreamTally
from server.state import AppState


class Stopping:
    """What to do the moment the server is told to stop, before it waits for open
    connections to close: the lifespan registers the hub's `close` (every open stream is
    told to reconnect elsewhere); the server's signal handler calls `begin`."""

    def __init__(self) -> None:
        self._actions: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = []

    def on_stop(self, action: Callable[[], None]) -> None:
        self._actions.append((asyncio.get_running_loop(), action))

    def begin(self) -> None:
        """From a signal handler: each action runs on its own event loop."""
        for loop, action in self._actions:
            loop.call_soon_threadsafe(action)


def lifespan_for(
    settings: Settings, kinds: Kinds, stopping: Stopping | None = None
) -> Callable[[Starlette], AbstractAsyncContextManager[AppState]]:
    url, streams_url = settings.require_redis_url(), settings.require_streams_url()
    exports = export_store(settings)  # a malformed TASKSTREAM_EXPORT_STORE stops the start

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        name = f"taskstream:web:{os.getpid()}"  # CLIENT LIST tells each process's connections
        # a request never waits out an outage: it answers 503 within about two seconds
        redis = connect(url, name, patience=PROMPT)
        store = TaskStore.connected(redis, settings, name, PROMPT)
        queue = arq_pool(url, settings.queue_name, PROMPT)
        hub = Hub(streams_url, settings.listener_queue, name=f"{name}:hub")
        await hub.start()
        if stopping is not None:
            stopping.on_stop(hub.close)
        tally = StreamTally(redis, settings.max_streams_per_user)
        await tally.start()
        sessions = Sessions()
        revocations = asyncio.create_task(sessions.follow_revocations(hub, redis))
        gate = Gate(capacity(settings.max_streams), tally)
        publishing = asyncio.create_task(publish_every(redis, gate, hub))
        try:
            yield {
                "settings": settings,
                "kinds": kinds,
                "redis": redis,
                "store": store,
                "plans": PlanStore(redis),
                "users": UserStore(redis),
                "queue": queue,
                "hub": hub,
                "exports": exports,
                "gate": gate,
                "sessions": sessions,
                "heartbeat": Heartbeat(settings.heartbeat_s),
            }
        finally:
            for task in (revocations, publishing):
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            await hub.stop()
            await tally.stop()
            await queue.aclose(close_connection_pool=True)
            await redis.aclose()
            await store.aclose()

    return lifespan
