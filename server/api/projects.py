"""A project, as the path of the work started on it: `/api/v1/projects/{projectId}/…`.

Projects have no record of their own beyond their owner: the first user to start work
under a project id (a plan, a simulation) owns it; to everyone else it does not exist.
"""

from __future__ import annotations

from starlette.requests import Request

from jobs.plans import PlanStore
from jobs.tasks import is_task_id
from server.auth import authenticate
from server.errors import NotFound
from server.state import app_state


async def owned_project(request: Request, project_id: str, *, claim: bool) -> str:
    """The project id if it is the caller's (claimed now if it is nobody's and `claim`)."""
    user_id = (await authenticate(request)).user_id
    plans = PlanStore(app_state(request)["store"].redis)
    if is_task_id(project_id):
        if claim and await plans.claim_project(project_id, user_id):
            return project_id
        if not claim and await plans.project_owner(project_id) == user_id:
            return project_id
    raise NotFound("no such project", code="PROJECT_NOT_FOUND")


async def owned_plan(request: Request, plan_id: str) -> dict[str, object]:
    """The stored business plan if its project is the caller's, else 404."""
    user_id = (await authenticate(request)).user_id
    plans = PlanStore(app_state(request)["store"].redis)
    plan = await plans.get(plan_id) if is_task_id(plan_id) else None
    if plan is None or await plans.project_owner(str(plan["projectId"])) != user_id:
        raise NotFound("no such business plan", code="PLAN_NOT_FOUND")
    return plan
