"""`POST /api/v1/demo/tasks`: a task that only reports progress."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.api.tasks import accepted
from server.auth import authenticate
from server.errors import Unprocessable
from server.idempotency import submit
from server.responses import parse_body
from server.state import app_state


class DemoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(20, ge=1, le=1000)
    stepSeconds: float = Field(0.1, ge=0, le=10)
    failAtStep: int | None = Field(None, ge=1)
    transientFailures: int = Field(0, ge=0, le=5)

    @model_validator(mode="after")
    def _fail_within_steps(self) -> DemoRequest:
        if self.failAtStep is not None and self.failAtStep > self.steps:
            raise ValueError("failAtStep must not be greater than steps")
        if self.steps * self.stepSeconds > 3600:
            raise ValueError("steps × stepSeconds must not exceed one hour")
        return self


async def start(request: Request) -> Response:
    await authenticate(request)
    body = await parse_body(request, DemoRequest)
    longest = app_state(request)["settings"].demo_max_s
    if body.steps * body.stepSeconds > longest:
        raise Unprocessable.field(
            "stepSeconds", f"steps × stepSeconds may be at most {longest:g} s here"
        )
    task = await submit(
        request, body, "demo", body.model_dump(), round(body.steps * body.stepSeconds, 1)
    )
    return accepted(task)


routes = [Route("/api/v1/demo/tasks", start, methods=["POST"])]
