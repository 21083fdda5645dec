"""The `demo` kind: a job that only reports progress, for tests, benchmarks and the page."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobs.errors import JobError, TransientError
from jobs.kind import JobContext, Kind, KindPolicy
from jobs.start import Caller, Prepared, Refused, Start

STAGES = ("analyzing", "generating", "formatting")


class Params(BaseModel):
    """`steps` progress events, `stepSeconds` apart; a failure or outages on request."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(20, ge=1, le=1000)
    stepSeconds: float = Field(0.1, ge=0, le=10)
    failAtStep: int | None = Field(None, ge=1)
    transientFailures: int = Field(0, ge=0, le=5)

    @model_validator(mode="after")
    def _fail_within_steps(self) -> Params:
        if self.failAtStep is not None and self.failAtStep > self.steps:
            raise ValueError("failAtStep must not be greater than steps")
        if self.steps * self.stepSeconds > 3600:
            raise ValueError("steps × stepSeconds must not exceed one hour")
        return self


async def demo(job: JobContext, params: Params) -> dict[str, Any]:
    if job.attempt <= params.transientFailures:
        raise TransientError(f"simulated upstream outage on attempt {job.attempt}")
    for step in range(1, params.steps + 1):
        await asyncio.sleep(params.stepSeconds)
        if step == params.failAtStep:
            raise JobError(f"failed at step {step}, as asked", code="DEMO_FAILURE")
        await job.progress.update(
            progress=step * 100 // params.steps,
            stage=STAGES[min(len(STAGES) - 1, (step - 1) * len(STAGES) // params.steps)],
            estimated_remaining=(params.steps - step) * params.stepSeconds,
        )
    return {"steps": params.steps, "message": "demo finished"}


async def prepare(caller: Caller, body: Params) -> Prepared:
    longest = caller.settings.demo_max_s
    if body.steps * body.stepSeconds > longest:
        raise Refused.field("stepSeconds", f"steps × stepSeconds may be at most {longest:g} s here")
    return Prepared(body, round(body.steps * body.stepSeconds, 1))


KIND = Kind(
    "demo",
    Params,
    KindPolicy(timeout_s=120, max_tries=3, retry_backoff_s=0.5),
    demo,
    start=Start("/api/v1/demo/tasks", Params, prepare, "A task that only reports progress"),
)
