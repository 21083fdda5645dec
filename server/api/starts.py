"""The routes that start tasks: `POST <start.path>` for every kind that declares a `Start`
(`jobs/start.py`), made from the registry.

Each authenticates the caller, validates the body (422 naming the fields), lets the kind's
hook check and prepare it (a `Refused` is answered in the envelope), then queues the task
for the caller (`submit`: quotas, `Idempotency-Key`) and answers 202 with where to follow it.

For clients written against the old synchronous endpoints (the client plan's migration),
the feature flag `TASKSTREAM_SYNC_WAIT_MAX_SECONDS` lets `Prefer: wait=N` (RFC 7240) hold
the answer until the task is done: its result (200) if it finishes within N seconds
(capped by the flag), the usual 202 otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobs.infra.config import Settings
from jobs.kind import Kind
from jobs.kinds import Kinds
from jobs.plans import PlanStore
from jobs.record.ids import is_digits
from server.access import owned_plan, owned_project
from server.api.tasks import result
from server.auth import authenticate
from server.realtime.follow import follow
from server.responses import parse_body
from server.state import app_state
from server.submit import accepted, submit


@dataclass(frozen=True)
class RequestCaller:
    """The `Caller` a start hook gets: the authenticated user of a request."""

    request: Request
    user_id: str

    @property
    def path_params(self) -> Mapping[str, str]:
        return self.request.path_params

    @property
    def settings(self) -> Settings:
        return app_state(self.request)["settings"]

    @property
    def plans(self) -> PlanStore:
        return app_state(self.request)["plans"]

    async def project(self, project_id: str, *, claim: bool) -> str:
        return await owned_project(self.request, project_id, claim=claim)

    async def plan(self, plan_id: str) -> Mapping[str, object]:
        return await owned_plan(self.request, plan_id)


async def start(request: Request, kind: Kind[Any]) -> Response:
    declared = kind.start
    assert declared is not None
    caller = RequestCaller(request, (await authenticate(request)).user_id)
    body = await parse_body(request, declared.body)
    prepared = await declared.prepare(caller, body)
    task = await submit(request, body, kind.name, prepared.params, prepared.estimated_time)
    wait = min(prefer_wait(request), caller.settings.sync_wait_max_s)
    if wait > 0 and await finished_within(request, task.id, wait):
        headers = {"Preference-Applied": f"wait={wait:g}"}
        return await result(request, kind=kind.name, task_id=task.id, headers=headers)
    more_links = {name: f"{kind.path}/{task.id}/{name}" for name in declared.links}
    named = {declared.id_field: task.id} if declared.id_field else {}
    return accepted(task, kind.path, extra_links=more_links, **named)


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


def routes_for(kinds: Kinds) -> list[Route]:
    """`POST <start.path>` for each kind that declares a start."""
    return [
        Route(kind.start.path, partial(start, kind=kind), methods=["POST"])
        for kind in kinds.values()
        if kind.start is not None
    ]
