"""`/api/v1/evaluations`: score a business plan on a rubric (evaluationId = taskId)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobs.kinds.evaluation import KIND
from jobs.kinds.evaluation import Params as EvaluateRequest
from server.access import owned_plan
from server.auth import authenticate
from server.responses import parse_body
from server.state import app_state
from server.submit import accepted, submit

BASE = KIND.path


async def evaluate(request: Request) -> Response:
    await authenticate(request)
    body = await parse_body(request, EvaluateRequest)
    state = app_state(request)
    if body.businessPlanId is not None:
        await owned_plan(request, body.businessPlanId)
    estimated = 20 if state["settings"].gemini.api_key else 2
    task = await submit(request, body, KIND.name, body, estimated)
    return accepted(task, BASE, evaluationId=task.id)


routes = [Route(BASE, evaluate, methods=["POST"])]
