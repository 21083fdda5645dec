"""Liveness and readiness."""

from __future__ import annotations

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.errors import error_response
from server.responses import ok
from server.state import app_state


async def healthz(request: Request) -> Response:
    return ok({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = app_state(request)
    try:
        await state["redis"].ping()
        if (records := state["store"].records) is not state["redis"]:
            await records.ping()  # the cluster of the task streams
    except (RedisError, OSError):
        return error_response(503, "REDIS_UNAVAILABLE", "Redis is not reachable")
    return ok({"status": "ready", "hubConnected": state["hub"].connected})


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
