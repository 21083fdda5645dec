"""The `financial` job: batches run off the event loop, and a cancel stops between them."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import numpy as np
import pytest

from jobs.accounts import UserStore
from jobs.infra.config import Settings
from jobs.kind import JobContext
from jobs.kinds.financial import Params, financial
from jobs.plans import PlanStore
from jobs.record.tasks import TaskStore
from jobs.runtime.progress import Progress
from jobs.simulation.engine import Batch, simulate_batch
from jobs.simulation.input import SimulationInput

SPEC = {"paths": 5000, "horizonMonths": 12, "revenue": {"initialUnits": 10, "unitPrice": 5}}


async def job_for(store: TaskStore, settings: Settings) -> JobContext:
    task = await store.create("financial")
    await store.start(task.id, 1)
    progress = Progress(store, task.id, attempt=1, interval=0)
    return JobContext(
        task.id,
        "financial",
        1,
        progress,
        store,
        PlanStore(store.redis),
        UserStore(store.redis),
        settings,
        {},
    )


class GatedBatches:
    """simulate_batch, held in its thread until the test opens the gate."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gate = threading.Event()
        self.started = asyncio.Event()
        self.calls = 0
        self.loop = asyncio.get_running_loop()

        def gated(spec: SimulationInput, paths: int, rng: np.random.Generator) -> Batch:
            self.calls += 1
            self.loop.call_soon_threadsafe(self.started.set)
            if not self.gate.wait(timeout=20):
                raise RuntimeError("the gate was never opened: the event loop was blocked")
            return simulate_batch(spec, paths, rng)

        monkeypatch.setattr("jobs.simulation.engine.simulate_batch", gated)


async def test_a_batch_runs_while_the_event_loop_goes_on(
    store: TaskStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    batches = GatedBatches(monkeypatch)
    job = await job_for(store, settings)
    running = asyncio.create_task(
        financial(job, Params.model_validate({"projectId": str(uuid.uuid4()), "input": SPEC}))
    )
    async with asyncio.timeout(20):
        await batches.started.wait()  # the loop runs while the batch is held in its thread
        batches.gate.set()
        result = await running
    assert batches.calls == 5 and result["paths"] == 5000


async def test_a_cancel_stops_before_the_next_batch_and_stores_nothing(
    store: TaskStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    batches = GatedBatches(monkeypatch)
    job = await job_for(store, settings)
    project_id = str(uuid.uuid4())
    running = asyncio.create_task(
        financial(job, Params.model_validate({"projectId": project_id, "input": SPEC}))
    )
    async with asyncio.timeout(20):
        await batches.started.wait()
        running.cancel()
        batches.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert batches.calls == 1
    assert await PlanStore(store.redis).latest_simulation(project_id) is None


async def test_the_result_is_stored_as_the_projects_latest_simulation(
    store: TaskStore, settings: Settings
):
    job = await job_for(store, settings)
    project_id = str(uuid.uuid4())
    params: dict[str, Any] = {"projectId": project_id, "input": SPEC | {"seed": 3}}
    result = await financial(job, Params.model_validate(params))
    assert await PlanStore(store.redis).latest_simulation(project_id) == result
    assert result["seed"] == 3 and result["cashFlow"]["p50"] == [50.0] * 12
