"""`POST /api/v1/demo/tasks`: a task that only reports progress."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobs.kinds.demo import Params as DemoRequest
from server.auth import authenticate
from server.errors import Unprocessable
from server.responses import parse_body
from server.state import app_state
from server.submit import accepted, submit


async def start(request: Request) -> Response:
    await authenticate(request)
    body = await parse_body(request, DemoRequest)
    longest = app_state(request)["settings"].demo_max_s
    if body.steps * body.stepSeconds > longest:
        raise Unprocessable.field(
            "stepSeconds", f"steps × stepSeconds may be at most {longest:g} s here"
        )
    task = await submit(request, body, "demo", body, round(body.steps * body.stepSeconds, 1))
    return accepted(task)


routes = [Route("/api/v1/demo/tasks", start, methods=["POST"])]
