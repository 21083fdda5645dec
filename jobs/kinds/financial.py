"""The `financial` kind: a Monte Carlo cash-flow simulation of a project.

Paths are simulated in batches of `BATCH_PATHS`, each in a thread so that the worker's
event loop keeps serving its other jobs; progress is published after every batch, and a
cancel stops the job before the next one. Batch i draws from the i-th child of the seed,
so a seed gives the same figures whatever the worker.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from jobs.kind import JobContext, Kind, KindPolicy
from jobs.simulation.input import SimulationInput
from jobs.start import Caller, Prepared, Refused, Start

if TYPE_CHECKING:
    from jobs.simulation.engine import Batch


class Params(BaseModel):
    projectId: str
    input: SimulationInput


async def financial(job: JobContext, params: Params) -> dict[str, Any]:
    # NumPy loads here, in the worker: the web process reads this module for `Params`
    import numpy as np

    from jobs.simulation.engine import BATCH_PATHS, simulate_batch, summarize

    spec = params.input
    seed = spec.seed if spec.seed is not None else secrets.randbits(63)
    sizes = [min(BATCH_PATHS, spec.paths - start) for start in range(0, spec.paths, BATCH_PATHS)]
    streams = np.random.SeedSequence(seed).spawn(len(sizes))
    batches: list[Batch] = []
    await job.progress.update(progress=2, stage="simulating")
    for done, (size, stream) in enumerate(zip(sizes, streams, strict=True), start=1):
        rng = np.random.default_rng(stream)
        batches.append(await asyncio.to_thread(simulate_batch, spec, size, rng))
        await job.progress.update(progress=2 + 88 * done // len(sizes))
    await job.progress.update(progress=92, stage="summarizing")
    figures = await asyncio.to_thread(summarize, spec, batches)
    result = {
        "simulationId": job.task_id,
        "projectId": params.projectId,
        "currency": spec.currency,
        "horizonMonths": spec.horizonMonths,
        "paths": spec.paths,
        "seed": seed,
        "discountRateAnnual": spec.discountRateAnnual,
        **figures,
        "input": spec.model_dump(mode="json"),
    }
    await job.plans.save_simulation(result)
    return result


async def prepare(caller: Caller, body: SimulationInput) -> Prepared:
    most = caller.settings.max_simulation_cells
    if body.paths * body.horizonMonths > most:
        raise Refused.field("paths", f"paths × horizonMonths may be at most {most:,} here")
    project = await caller.project(caller.path_params["project_id"], claim=True)
    estimated = max(1, body.paths * body.horizonMonths // 2_000_000)
    return Prepared(Params(projectId=project, input=body), estimated)


KIND = Kind(
    "financial",
    Params,
    # a 50,000 × 120 run holds ~100 MB while it summarises: two at once in a worker
    KindPolicy(timeout_s=300, max_tries=1, retry_backoff_s=1, per_worker=2),
    financial,
    path="/api/v1/financial/simulations",
    start=Start(
        "/api/v1/projects/{project_id}/financial/simulate",
        SimulationInput,
        prepare,
        "Monte Carlo cash flow",
        (404, 429),
        "simulationId",
    ),
)
