"""`/api/v1/business-plan`: generate a plan from the wizard's answers, read it back.

For clients written against the old synchronous endpoint (the client plan's migration), the feature
flag `TASKSTREAM_SYNC_WAIT_MAX_SECONDS` lets `Prefer: wait=N` (RFC 7240) hold the answer
until the plan is done: 200 with the plan if it finishes within N seconds (capped by the
flag), the usual 202 otherwise.
"""

from __future__ import annotations

import asyncio
import uuid

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobs.kinds.business_plan import KIND, Answers, Language, Params
from jobs.record.tasks import is_digits
from server.access import owned_plan, owned_project
from server.api.tasks import result
from server.auth import authenticate
from server.realtime.follow import follow
from server.responses import ok, parse_body
from server.state import app_state
from server.submit import accepted, submit

BASE = KIND.path


class GenerateRequest(Answers):
    """The wizard's answers, the project they are for (a new one when not given), and the
    plan's language."""

    projectId: str | None = Field(None, pattern=r"^[0-9a-f-]{36}$")
    language: Language = "ko"


async def generate(request: Request) -> Response:
    await authenticate(request)
    body = await parse_body(request, GenerateRequest)
    state = app_state(request)
    wait = min(prefer_wait(request), state["settings"].sync_wait_max_s)
    answers = Answers.model_validate(body.model_dump(exclude={"projectId", "language"}))
    project = await owned_project(request, body.projectId or str(uuid.uuid4()), claim=True)
    params = Params(answers=answers, language=body.language, projectId=project)
    estimated = 45 if state["settings"].gemini.api_key else 4
    task = await submit(request, body, KIND.name, params, estimated_time=estimated)
    if wait > 0 and await finished_within(request, task.id, wait):
        headers = {"Preference-Applied": f"wait={wait:g}"}
        return await result(request, kind=KIND.name, task_id=task.id, headers=headers)
    return accepted(task, BASE)


def prefer_wait(request: Request) -> float:
    """The N of `Prefer: wait=N`, or 0."""
    for preference in request.headers.get("prefer", "").split(","):
        name, _, value = preference.strip().partition("=")
        if name.lower() == "wait" and is_digits(value):
            return float(value)
    return 0.0


async def finished_within(request: Request, task_id: str, seconds: float) -> bool:
    state = app_state(request)
    try:
        async with asyncio.timeout(seconds):
            async for _ in follow(state["hub"], state["store"], task_id):
                pass  # follow() ends with the task's terminal event
    except TimeoutError:
        return False
    return True


async def plan(request: Request) -> Response:
    return ok(await owned_plan(request, request.path_params["plan_id"]))


routes = [
    Route(BASE + "/generate", generate, methods=["POST"]),
    Route(BASE + "/{plan_id}", plan),
]
