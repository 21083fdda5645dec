"""Who may see what: every lookup of a task, a project or a plan on behalf of a caller.

Another user's task, project or plan is 404, exactly like an unknown or malformed id, so
that ids cannot be probed. A project has no record beyond its owner: the first user to
start work under a project id (a plan, a simulation) owns it; to everyone else it does not
exist. A task nobody owns (a password-reset mail) is its id's holder's, where `anonymous`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection, Request

from jobs.record.ids import is_task_id
from jobs.record.values import Status, Task
from server.auth import authenticate, has_credentials
from server.errors import Conflict, NotFound
from server.state import app_state


async def load_task(
    conn: HTTPConnection,
    *,
    kind: str | None = None,
    task_id: str | None = None,
    ticket: bool = False,
    anonymous: bool = False,
) -> Task:
    """The caller's task named by the path (or `task_id`): 401 without credentials, 404
    for unknown and malformed ids and for someone else's task alike. With `anonymous`, a
    task nobody owns (a password-reset mail) is anyone's who holds its id."""
    user = ""
    if not anonymous or has_credentials(conn, ticket=ticket):
        user = (await authenticate(conn, ticket=ticket)).user_id
    task_id = task_id or conn.path_params["task_id"]
    store = app_state(conn)["store"]
    task = await store.owned(task_id, user)
    if task is None and anonymous and user:
        task = await store.owned(task_id, "")
    if task is None or (kind is not None and task.snapshot["kind"] != kind):
        raise NotFound("no such task", code="TASK_NOT_FOUND")
    return task


async def load_finished(
    request: Request,
    *,
    kind: str | None = None,
    task_id: str | None = None,
    task: Task | None = None,
) -> Task:
    """The task, if it completed; else 409 with why it has no result (or 404)."""
    task = task or await load_task(request, kind=kind, task_id=task_id)
    snapshot = task.snapshot
    if task.status is Status.COMPLETED:
        return task
    details: dict[str, Any] = {"status": task.status, "progress": snapshot.get("progress")}
    if task.status is Status.FAILED:
        details |= {
            "errorCode": snapshot.get("errorCode"),
            "errorMessage": snapshot.get("errorMessage"),
        }
        raise Conflict("the task failed; it has no result", code="TASK_FAILED", details=details)
    if task.status is Status.CANCELLED:
        raise Conflict(
            "the task was cancelled; it has no result", code="TASK_CANCELLED", details=details
        )
    raise Conflict("the task has not finished yet", code="TASK_NOT_FINISHED", details=details)


async def owned_project(request: Request, project_id: str, *, claim: bool) -> str:
    """The project id if it is the caller's (claimed now if it is nobody's and `claim`)."""
    user_id = (await authenticate(request)).user_id
    plans = app_state(request)["plans"]
    if is_task_id(project_id):
        if claim and await plans.claim_project(project_id, user_id):
            return project_id
        if not claim and await plans.project_owner(project_id) == user_id:
            return project_id
    raise NotFound("no such project", code="PROJECT_NOT_FOUND")


async def owned_plan(request: Request, plan_id: str) -> dict[str, object]:
    """The stored business plan if its project is the caller's, else 404."""
    user_id = (await authenticate(request)).user_id
    plans = app_state(request)["plans"]
    plan = await plans.get(plan_id) if is_task_id(plan_id) else None
    if plan is None or await plans.project_owner(str(plan["projectId"])) != user_id:
        raise NotFound("no such business plan", code="PLAN_NOT_FOUND")
    return plan
