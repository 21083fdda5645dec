"""Starting a task for the caller (`submit`), and the 202 that answers it (`accepted`).

A task starts at most once per `Idempotency-Key`: a client that retries a POST after a
timeout must not start the work twice. With the same key and the same request it gets
the same task back (202, its current state); the same key with another request is
refused (422 `IDEMPOTENCY_KEY_REUSED`); a retry that arrives while the first is still
being handled gets 409 `IDEMPOTENCY_IN_PROGRESS` with `Retry-After`. Keys are kept as
long as tasks are, and are each user's own.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any

from pydantic import BaseModel
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response

from jobs.infra import keys
from jobs.kind import TASKS_PATH
from jobs.record.tasks import WriteRejected
from jobs.record.values import Task
from jobs.runtime import intake
from server.auth import authenticate
from server.errors import ApiError, Conflict, TooManyRequests, Unprocessable
from server.responses import ok
from server.state import app_state

MAX_KEY_LENGTH = 200


async def submit(
    request: Request,
    body: BaseModel,
    kind: str,
    params: BaseModel,
    estimated_time: float | None = None,
) -> Task:
    """Start a task of `kind` with `params` for the caller; `body` is the request's, for
    its fingerprint."""
    state = app_state(request)
    store, queue, settings, redis = (
        state["store"],
        state["queue"],
        state["settings"],
        state["redis"],
    )
    chosen = state["kinds"][kind]
    owner = (await authenticate(request)).user_id

    async def start() -> Task:
        user = await state["users"].get(owner)
        verified = user is not None and user.get("emailVerified") == "1"
        limit, hourly = settings.task_limits(verified)
        started = await _count_start(redis, owner, hourly, verified)
        try:
            return await intake.submit(
                store, queue, settings, chosen, params,
                owner=owner, estimated_time=estimated_time, in_flight_limit=limit,
            )  # fmt: skip
        except BaseException as error:
            await redis.decr(started)  # not started after all
            if not isinstance(error, WriteRejected) or error.reason != "limit":
                raise
            more = "" if verified else " (verify your e-mail address for more)"
            raise TooManyRequests(
                f"at most {limit} tasks in flight per user{more}; wait for one to end",
                code="TOO_MANY_TASKS",
                headers={"Retry-After": "5"},
            ) from None

    key = request.headers.get("idempotency-key")
    if key is None:
        return await start()
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
            code="BAD_IDEMPOTENCY_KEY",
        )
    request_json = json.dumps([request.url.path, body.model_dump(mode="json")], sort_keys=True)
    fingerprint = hashlib.sha256(request_json.encode()).hexdigest()
    slot = keys.idempotency(owner, hashlib.sha256(key.encode()).hexdigest())
    if await redis.set(slot, f"{fingerprint}:", nx=True, ex=settings.retention_s):
        try:
            task = await start()
        except BaseException:
            await redis.delete(slot)
            raise
        await redis.set(slot, f"{fingerprint}:{task.id}", ex=settings.retention_s)
        return task
    seen, _, task_id = (await redis.get(slot) or ":").partition(":")
    if seen != fingerprint:
        raise Unprocessable(
            "this Idempotency-Key was used with another request", code="IDEMPOTENCY_KEY_REUSED"
        )
    earlier = await store.get(task_id) if task_id else None
    if earlier is None:
        raise Conflict(
            "a request with this Idempotency-Key is still being handled",
            code="IDEMPOTENCY_IN_PROGRESS",
            headers={"Retry-After": "1"},
        )
    return earlier


async def _count_start(redis: Redis, owner: str, hourly: int, verified: bool) -> str:
    """Count a start against the owner's clock hour; 429 `TOO_MANY_TASKS_STARTED` past
    `hourly`. The key counted, to give the start back if it does not happen."""
    now = time.time()
    key = keys.started(owner, int(now // 3600))
    async with redis.pipeline(transaction=True) as tx:
        tx.incr(key)
        tx.expire(key, 3601)
        count, _ = await tx.execute()
    if count > hourly:
        await redis.decr(key)
        more = "" if verified else " (verify your e-mail address for more)"
        raise TooManyRequests(
            f"at most {hourly} tasks started per hour{more}",
            code="TOO_MANY_TASKS_STARTED",
            headers={"Retry-After": str(max(1, math.ceil(3600 - now % 3600)))},
        )
    return key


def links(task_id: str, base: str = TASKS_PATH, **extra: str) -> dict[str, str]:
    return {
        **extra,
        "status": f"{base}/{task_id}/status",
        "result": f"{base}/{task_id}/result",
        "cancel": f"{base}/{task_id}/cancel",
        "events": f"{TASKS_PATH}/{task_id}/events",
        "websocket": "/api/v1/ws",
    }


def accepted(
    task: Task, base: str = TASKS_PATH, extra_links: dict[str, str] | None = None, **extra: Any
) -> Response:
    """The answer to a request that started a task: 202 with where to follow it."""
    snapshot = task.snapshot
    data = {
        "taskId": task.id,
        "status": snapshot["status"],
        "estimatedTime": snapshot.get("estimatedTime"),
        **extra,
        "links": links(task.id, base, **(extra_links or {})),
    }
    return ok(data, 202, headers={"Location": links(task.id, base)["status"]})
