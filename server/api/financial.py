"""`/api/v1/projects/{projectId}/financial/simulate`: a Monte Carlo cash-flow simulation.

Followed under `/api/v1/financial/simulations/{taskId}/` (status, result, cancel); the
input is validated here, with field errors, before any work is queued.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobs.kinds.financial import KIND, Params
from jobs.simulation_input import SimulationInput
from server.access import owned_project
from server.auth import authenticate
from server.errors import Unprocessable
from server.responses import parse_body
from server.state import app_state
from server.submit import accepted, submit

BASE = KIND.path


async def simulate(request: Request) -> Response:
    await authenticate(request)
    body = await parse_body(request, SimulationInput)
    most = app_state(request)["settings"].max_simulation_cells
    if body.paths * body.horizonMonths > most:
        raise Unprocessable.field("paths", f"paths × horizonMonths may be at most {most:,} here")
    project = await owned_project(request, request.path_params["project_id"], claim=True)
    params = Params(projectId=project, input=body)
    estimated = max(1, body.paths * body.horizonMonths // 2_000_000)
    task = await submit(request, body, KIND.name, params, estimated_time=estimated)
    return accepted(task, BASE, simulationId=task.id)


routes = [Route("/api/v1/projects/{project_id}/financial/simulate", simulate, methods=["POST"])]
