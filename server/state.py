"""The clients shared by every request (the lifespan's state, typed) and how a request
reads them. What opens and closes them is `server/lifespan.py`; the types are imported for
the type checker only, so that every module can read the state without importing back up
into what builds it."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict, cast

from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from redis.asyncio import Redis

    from jobs.accounts import UserStore
    from jobs.documents.store import ExportStore
    from jobs.infra.config import Settings
    from jobs.kinds import Kinds
    from jobs.plans import PlanStore
    from jobs.record.tasks import TaskStore
    from server.realtime.gate import Gate
    from server.realtime.heartbeat import Heartbeat
    from server.realtime.hub import Hub
    from server.realtime.sessions import Sessions


class AppState(TypedDict):
    settings: Settings
    kinds: Kinds
    redis: Redis  # the process's client; the stores below are over it
    store: TaskStore
    plans: PlanStore
    users: UserStore
    queue: ArqRedis
    hub: Hub
    exports: ExportStore
    gate: Gate
    sessions: Sessions
    heartbeat: Heartbeat


def app_state(conn: HTTPConnection) -> AppState:
    return cast(AppState, conn.scope["state"])
