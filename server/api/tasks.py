"""The generic task resource: status (polling, with ETag), result, cancel."""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Route

from jobs import control
from jobs.tasks import Task, WriteRejected, is_task_id
from server.errors import Conflict, NotFound
from server.responses import ok
from server.state import app_state

BASE = "/api/v1/tasks"


def links(task_id: str) -> dict[str, str]:
    return {
        "status": f"{BASE}/{task_id}/status",
        "result": f"{BASE}/{task_id}/result",
        "events": f"{BASE}/{task_id}/events",
        "cancel": f"{BASE}/{task_id}/cancel",
        "websocket": "/api/v1/ws",
    }


def accepted(task: Task) -> Response:
    """The answer to a request that started a task: 202 with where to follow it."""
    snapshot = task.snapshot
    data = {
        "taskId": task.id,
        "status": snapshot["status"],
        "estimatedTime": snapshot.get("estimatedTime"),
        "links": links(task.id),
    }
    return ok(data, 202, headers={"Location": links(task.id)["status"]})


async def load_task(conn: HTTPConnection, *, with_text: bool = False) -> Task:
    """The task named by the path, or 404 (unknown and malformed ids alike)."""
    task_id: str = conn.path_params["task_id"]
    task = (
        await app_state(conn)["store"].get(task_id, with_text=with_text)
        if is_task_id(task_id)
        else None
    )
    if task is None:
        raise NotFound("no such task", code="TASK_NOT_FOUND")
    return task


async def status(request: Request) -> Response:
    task = await load_task(request)
    etag = f'"v{task.snapshot["version"]}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return ok(task.snapshot, headers=headers)


async def result(request: Request) -> Response:
    task = await load_task(request)
    snapshot = task.snapshot
    if task.status == "completed":
        return ok(await app_state(request)["store"].result(task.id))
    details = {"status": task.status, "progress": snapshot.get("progress")}
    if task.status == "failed":
        details |= {
            "errorCode": snapshot.get("errorCode"),
            "errorMessage": snapshot.get("errorMessage"),
        }
        raise Conflict("the task failed; it has no result", code="TASK_FAILED", details=details)
    if task.status == "cancelled":
        raise Conflict(
            "the task was cancelled; it has no result", code="TASK_CANCELLED", details=details
        )
    raise Conflict("the task has not finished yet", code="TASK_NOT_FINISHED", details=details)


async def cancel(request: Request) -> Response:
    task = await load_task(request)
    state = app_state(request)
    try:
        await control.cancel(state["store"], state["queue"], state["settings"], task.id)
    except WriteRejected as rejected:
        raise Conflict(
            f"the task has already ended ({rejected.status})",
            code="TASK_FINISHED",
            details={"status": rejected.status},
        ) from None
    cancelled = await state["store"].get(task.id)
    assert cancelled is not None
    return ok(cancelled.snapshot)


routes = [
    Route(BASE + "/{task_id}/status", status),
    Route(BASE + "/{task_id}/result", result),
    Route(BASE + "/{task_id}/cancel", cancel, methods=["POST"]),
]
