"""The `demo` kind: a job that only reports progress, for tests, benchmarks and the page."""

from __future__ import annotations

import asyncio
from typing import Any

from jobs.errors import JobError, TransientError
from jobs.lifecycle import JobContext

STAGES = ("analyzing", "generating", "formatting")


async def demo(job: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    steps: int = params["steps"]
    step_seconds: float = params["stepSeconds"]
    fail_at: int | None = params.get("failAtStep")
    if job.attempt <= params.get("transientFailures", 0):
        raise TransientError(f"simulated upstream outage on attempt {job.attempt}")
    for step in range(1, steps + 1):
        await asyncio.sleep(step_seconds)
        if step == fail_at:
            raise JobError(f"failed at step {step}, as asked", code="DEMO_FAILURE")
        await job.progress.update(
            progress=step * 100 // steps,
            stage=STAGES[min(len(STAGES) - 1, (step - 1) * len(STAGES) // steps)],
            estimated_remaining=(steps - step) * step_seconds,
        )
    return {"steps": steps, "message": "demo finished"}
