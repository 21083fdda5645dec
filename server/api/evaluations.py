"""`/api/v1/evaluations`: score a business plan on a rubric (evaluationId = taskId)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobs.plans import SECTION_KEYS
from server.api.projects import owned_plan
from server.api.tasks import accepted, resource_routes
from server.auth import authenticate
from server.idempotency import submit
from server.responses import parse_body
from server.state import app_state

BASE = "/api/v1/evaluations"


class InlineSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=f"^({'|'.join(SECTION_KEYS)})$")
    content: str = Field(max_length=20000)


class InlinePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    sections: list[InlineSection] = Field(min_length=1, max_length=len(SECTION_KEYS))


class EvaluateRequest(BaseModel):
    """A stored plan by id, or a plan inline: exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    businessPlanId: str | None = None
    plan: InlinePlan | None = None
    language: Literal["ko", "en"] | None = None

    @model_validator(mode="after")
    def _one_plan(self) -> EvaluateRequest:
        if (self.businessPlanId is None) == (self.plan is None):
            raise ValueError("give either businessPlanId or plan")
        return self


async def evaluate(request: Request) -> Response:
    await authenticate(request)
    body = await parse_body(request, EvaluateRequest)
    state = app_state(request)
    params: dict[str, Any] = {"language": body.language}
    if body.businessPlanId is not None:
        await owned_plan(request, body.businessPlanId)
        params["businessPlanId"] = body.businessPlanId
    else:
        assert body.plan is not None
        params["plan"] = body.plan.model_dump()
    estimated = 20 if state["settings"].gemini.api_key else 2
    task = await submit(request, body, "evaluation", params, estimated)
    return accepted(task, BASE, evaluationId=task.id)


routes = [Route(BASE, evaluate, methods=["POST"]), *resource_routes(BASE, "evaluation")]
