"""How a kind is started over HTTP: the route it declares, and the hook that prepares it.

A kind with a `Start` is started by `POST <start.path>` with a JSON body validated as
`start.body`. The web process authenticates the caller, validates the body (422 with the
fields at fault), then awaits `start.prepare(caller, body)`: the hook checks what only the
kind knows (the caller's project, a limit of its own) through `Caller`, raises `Refused`
to say no, and returns the job's params. The web process then queues the task (the
caller's quotas, `Idempotency-Key`) and answers 202. The routes and the OpenAPI document
are made from the kinds' starts (`server/api/starts.py`); nothing here knows HTTP beyond
the status a refusal is answered with.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from jobs.infra.config import Settings
    from jobs.plans import PlanStore

B = TypeVar("B", bound=BaseModel)


class Refused(Exception):
    """The start is refused: answered with `status`, `code` and `message` in the error
    envelope, nothing queued."""

    def __init__(self, status: int, code: str, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    @classmethod
    def field(cls, name: str, message: str) -> Refused:
        """422 naming one field of the body, in the shape validation errors have."""
        details = [{"field": name, "message": message}]
        return cls(422, "VALIDATION_ERROR", "the request body is invalid", details=details)


class Caller(Protocol):
    """Who starts the task, as a start hook sees them: already authenticated."""

    @property
    def user_id(self) -> str: ...

    @property
    def path_params(self) -> Mapping[str, str]: ...  # the values of the path's `{names}`

    @property
    def settings(self) -> Settings: ...

    @property
    def plans(self) -> PlanStore: ...

    async def project(self, project_id: str, *, claim: bool) -> str:
        """The project id if it is the caller's (claimed now if it is nobody's and
        `claim`); 404 `PROJECT_NOT_FOUND` otherwise, as for an unknown one."""
        ...

    async def plan(self, plan_id: str) -> Mapping[str, object]:
        """The stored business plan if its project is the caller's; else 404."""
        ...


@dataclass(frozen=True)
class Prepared:
    """What a start hook returns: the job's params, and how long it is expected to take."""

    params: BaseModel
    estimated_time: float | None = None


@dataclass(frozen=True)
class Start(Generic[B]):
    """`POST <path>` with a `body` starts a task of the kind that declares it."""

    path: str  # may name path parameters: `/api/v1/projects/{project_id}/export`
    body: type[B]
    prepare: Callable[[Caller, B], Awaitable[Prepared]]
    summary: str  # the OpenAPI operation's
    errors: tuple[int, ...] = (429,)  # what else it may answer, beyond 401, 413 and 422
    id_field: str | None = None  # the 202's field that repeats the task id ("exportId")
    links: tuple[str, ...] = ()  # more links of the 202, under the kind's path

    @property
    def path_names(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)
