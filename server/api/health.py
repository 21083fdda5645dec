"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from redis.exceptions import RedisClusterException, RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import store_unavailable
from server.responses import ok
from server.state import app_state

READY_WITHIN_S = 2.0  # a load balancer's health check waits longer than this


async def healthz(request: Request) -> Response:
    return ok({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = app_state(request)
    try:
        async with asyncio.timeout(READY_WITHIN_S):  # a server stopped, not gone: no answer
            await state["redis"].ping()
            if (records := state["store"].records) is not state["redis"]:
                await records.ping()  # the cluster of the task streams
    except (RedisError, RedisClusterException, OSError):  # OSError: TimeoutError too
        return store_unavailable()
    return ok({"status": "ready", "hubConnected": state["hub"].connected})


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
