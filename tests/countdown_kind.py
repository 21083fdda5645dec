"""A task kind of the test suite's own, registered as any kind is (`TASKSTREAM_EXTRA_KINDS`
names this module): it shows that a kind is one module, and that the routes, the OpenAPI
document and the worker follow from it. Not shipped."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobs.kind import JobContext, Kind, KindPolicy


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: int = Field(ge=1, le=20)
    word: str = Field(min_length=1, max_length=20)


async def countdown(job: JobContext, params: Params) -> dict[str, Any]:
    counted = []
    for n in range(params.start, 0, -1):
        counted.append(n)
        await job.progress.update(progress=100 * len(counted) // params.start, stage=str(n))
    return {"counted": counted, "word": params.word}


KIND = Kind(
    "countdown",
    Params,
    KindPolicy(timeout_s=30, max_tries=2, retry_backoff_s=0.1),
    countdown,
    path="/api/v1/countdowns",
    startable=True,
)
