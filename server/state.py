"""The clients shared by every request, opened and closed by the app's lifespan."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import TypedDict, cast

from arq.connections import ArqRedis
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from jobs.config import Settings
from jobs.connections import arq_pool, connect
from jobs.kinds import Kinds
from jobs.record.tasks import TaskStore
from server.realtime.gate import Gate
from server.realtime.hub import Hub
from server.realtime.sessions import Sessions


class AppState(TypedDict):
    settings: Settings
    kinds: Kinds
    store: TaskStore
    queue: ArqRedis
    hub: Hub
    gate: Gate
    sessions: Sessions


def app_state(conn: HTTPConnection) -> AppState:
    return cast(AppState, conn.scope["state"])


def lifespan_for(
    settings: Settings, kinds: Kinds
) -> Callable[[Starlette], AbstractAsyncContextManager[AppState]]:
    url = settings.require_redis_url()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        name = f"taskstream:web:{os.getpid()}"  # CLIENT LIST tells each process's connections
        redis = connect(url, name)
        queue = arq_pool(url, settings.queue_name)
        hub = Hub(url, settings.listener_queue, name=f"{name}:hub")
        await hub.start()
        app.state.hub = hub  # for the server's signal handler (`taskstream web`)
        sessions = Sessions()
        revocations = asyncio.create_task(sessions.follow_revocations(hub, redis))
        try:
            yield {
                "settings": settings,
                "kinds": kinds,
                "store": TaskStore(redis, settings),
                "queue": queue,
                "hub": hub,
                "gate": Gate(settings.max_streams, settings.max_streams_per_user),
                "sessions": sessions,
            }
        finally:
            revocations.cancel()
            with suppress(asyncio.CancelledError):
                await revocations
            await hub.stop()
            await queue.aclose(close_connection_pool=True)
            await redis.aclose()

    return lifespan
