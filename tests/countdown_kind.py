"""A task kind of the test suite's own, registered as any kind is (`TASKSTREAM_EXTRA_KINDS`
names this module): it shows that a kind shaped like the real ones is one module, its
HTTP start included, and that the routes, the OpenAPI document and the worker follow from
it. Not shipped."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobs.kind import JobContext, Kind, KindPolicy
from jobs.start import Caller, Prepared, Refused, Start


class Request(BaseModel):
    """The start's body: what the caller asks for."""

    model_config = ConfigDict(extra="forbid")

    start: int = Field(ge=1, le=20)
    word: str = Field(min_length=1, max_length=20)


class Params(Request):
    """The job's input: the request, and the project it counts for."""

    projectId: str


async def prepare(caller: Caller, body: Request) -> Prepared:
    """The caller's project (claimed if it is nobody's, else 404), and a limit of the
    kind's own."""
    if body.word == "never":
        raise Refused(409, "WORD_REFUSED", "this word is never counted down to")
    project = await caller.project(caller.path_params["project_id"], claim=True)
    return Prepared(Params(projectId=project, **body.model_dump()), estimated_time=body.start)


async def countdown(job: JobContext, params: Params) -> dict[str, Any]:
    counted = []
    for n in range(params.start, 0, -1):
        counted.append(n)
        await job.progress.update(progress=100 * len(counted) // params.start, stage=str(n))
    return {"counted": counted, "word": params.word, "projectId": params.projectId}


PATH = "/api/v1/countdowns"
KIND = Kind(
    "countdown",
    Params,
    KindPolicy(timeout_s=30, max_tries=2, retry_backoff_s=0.1),
    countdown,
    path=PATH,
    start=Start(
        "/api/v1/projects/{project_id}/countdowns",
        Request,
        prepare,
        "Count down to a word",
        (404, 409, 429),
        "countdownId",
    ),
)
