"""The task resource: status (polling, with ETag), result, cancel.

`kind_routes(kinds)` mounts them under each kind's own path too (the client plan's
`/api/v1/business-plan/{taskId}/status`, …), where a task of another kind is not found;
under `/api/v1/tasks` they serve every kind. Tasks are started by their kinds' own
routes (`starts.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobs.kind import TASKS_PATH
from jobs.kinds import Kinds
from jobs.record.ids import is_digits
from jobs.record.tasks import WriteRejected
from jobs.record.values import Status, Task, TaskSnapshot
from jobs.runtime import intake
from server.access import load_finished, load_task
from server.auth import authenticate
from server.errors import Conflict, Unprocessable
from server.responses import ok
from server.state import app_state

BASE = TASKS_PATH


async def status(request: Request, kind: str | None = None, task: Task | None = None) -> Response:
    task = task or await load_task(request, kind=kind)
    state = app_state(request)
    await state["store"].count_poll(task.id)
    state["gate"].polls += 1
    etag = f'"v{task.snapshot["version"]}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return ok(task.snapshot, headers=headers)


async def result(
    request: Request,
    kind: str | None = None,
    task_id: str | None = None,
    headers: dict[str, str] | None = None,
    task: Task | None = None,
) -> Response:
    task = await load_finished(request, kind=kind, task_id=task_id, task=task)
    return ok(await app_state(request)["store"].result(task.id), headers=headers)


async def cancel(request: Request, kind: str | None = None, task: Task | None = None) -> Response:
    task = task or await load_task(request, kind=kind)
    state = app_state(request)
    of_kind = state["kinds"][task.snapshot["kind"]]
    try:
        await intake.cancel(state["store"], state["queue"], state["settings"], of_kind, task.id)
    except WriteRejected as rejected:
        raise Conflict(
            f"the task has already ended ({rejected.status})",
            code="TASK_FINISHED",
            details={"status": rejected.status},
        ) from None
    cancelled = await state["store"].get(task.id)
    assert cancelled is not None
    return ok(cancelled.snapshot)


Endpoint = Callable[..., Awaitable[Response]]


async def _anyones(endpoint: Endpoint, request: Request, kind: str) -> Response:
    """`endpoint` for a kind whose tasks may have no owner (a reset request's mail): such
    a task is its id's holder's."""
    return await endpoint(request, task=await load_task(request, kind=kind, anonymous=True))


def kind_routes(kinds: Kinds) -> list[Route]:
    """Status, result and cancel under each kind's own path."""
    routes = []
    endpoints: list[tuple[str, Endpoint, str]] = [
        ("status", status, "GET"), ("result", result, "GET"), ("cancel", cancel, "POST"),
    ]  # fmt: skip
    for kind in kinds.values():
        if kind.path == BASE:
            continue
        for name, endpoint, method in endpoints:
            serve: Endpoint = partial(_anyones, endpoint) if kind.ownerless else endpoint
            path = f"{kind.path}/{{task_id}}/{name}"
            routes.append(Route(path, partial(serve, kind=kind.name), methods=[method]))
    return routes


STATUSES = tuple(Status)


async def listing(request: Request) -> Response:
    """The caller's tasks, newest first: `?status=a,b&kind=c&limit=20&offset=0`."""
    principal = await authenticate(request)
    query = request.query_params
    statuses = _choices(query.get("status"), STATUSES, "status")
    kinds = _choices(query.get("kind"), tuple(app_state(request)["kinds"]), "kind")
    limit = _number(query.get("limit"), 20, 1, 100, "limit")
    offset = _number(query.get("offset"), 0, 0, 1_000_000, "offset")
    store = app_state(request)["store"]
    if statuses == set(STATUSES) and kinds == set(app_state(request)["kinds"]):
        # unfiltered: a page of the index, whatever the caller's history
        total, ids = await store.page_of_user(principal.user_id, offset, limit)
        found = await asyncio.gather(*(store.get(t) for t in ids))  # one pipelined read
        page = [task.snapshot for task in found if task is not None]
        return ok({"tasks": page, "total": total, "offset": offset, "limit": limit})
    ids = [task_id for task_id, _ in await store.of_user(principal.user_id)]
    found = await asyncio.gather(*(store.get(t) for t in ids))
    matched: list[TaskSnapshot] = [
        task.snapshot
        for task in found
        if task is not None and task.status in statuses and task.snapshot["kind"] in kinds
    ]
    page = matched[offset : offset + limit]
    return ok({"tasks": page, "total": len(matched), "offset": offset, "limit": limit})


def _choices(raw: str | None, allowed: tuple[str, ...], name: str) -> set[str]:
    chosen = {v for v in (raw or "").split(",") if v} or set(allowed)
    if not chosen <= set(allowed):
        raise Unprocessable.field(name, f"one or more of {', '.join(allowed)}", "the query")
    return chosen


def _number(raw: str | None, default: int, low: int, high: int, name: str) -> int:
    if raw is None:
        return default
    if not is_digits(raw) or not low <= int(raw) <= high:
        raise Unprocessable.field(name, f"a whole number from {low} to {high}", "the query")
    return int(raw)


routes = [
    Route(BASE, listing),
    Route(BASE + "/{task_id}/status", status),
    Route(BASE + "/{task_id}/result", result),
    Route(BASE + "/{task_id}/cancel", cancel, methods=["POST"]),
]
