"""`/api/v1/business-plan/{planId}`: a stored business plan, read back.

Plans are written by the `business_plan` kind (`jobs/kinds/business_plan.py`), started by
`POST /api/v1/business-plan/generate` like every kind's start (`server/api/starts.py`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobs.kinds.business_plan import PATH
from server.access import owned_plan
from server.responses import ok


async def plan(request: Request) -> Response:
    return ok(await owned_plan(request, request.path_params["plan_id"]))


routes = [Route(PATH + "/{plan_id}", plan)]
