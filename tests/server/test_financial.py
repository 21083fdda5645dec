"""Financial simulation through a real worker: batches as progress, figures as a result."""

from __future__ import annotations

import math
import uuid
from typing import Any

import httpx
import pytest

from jobs.infra import keys
from tests.support import collect, signup, wait_for_status

BASE = "/api/v1/financial/simulations"
SPEC: dict[str, Any] = {
    "horizonMonths": 60,
    "paths": 10_000,
    "seed": 42,
    "revenue": {"initialUnits": 200, "unitPrice": 15000, "monthlyGrowth": 0.04},
    "costs": {
        "fixedMonthly": 4_000_000,
        "variableCostPerUnit": 6000,
        "hiring": [{"role": "개발자", "startMonth": 6, "monthlyCost": 4_500_000}],
    },
    "funding": {"initialCash": 30_000_000, "rounds": [{"month": 12, "amount": 100_000_000}]},
    "uncertainty": {
        "monthlyGrowth": {"low": 0.0, "high": 0.08},
        "unitPrice": {"low": 12000, "high": 17000},
        "monthlyVolatility": 0.05,
    },
}


def simulate_url(project_id: str) -> str:
    return f"/api/v1/projects/{project_id}/financial/simulate"


async def simulate(http: httpx.AsyncClient, project_id: str, spec: dict[str, Any]) -> str:
    response = await http.post(simulate_url(project_id), json=spec)
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert data["simulationId"] == data["taskId"]
    assert data["links"]["status"] == f"{BASE}/{data['taskId']}/status"
    task_id: str = data["taskId"]
    return task_id


async def test_ten_thousand_paths_report_every_batch_and_the_figures(client: httpx.AsyncClient):
    project_id = str(uuid.uuid4())
    task_id = await simulate(client, project_id, SPEC)
    events = await collect(client, f"/api/v1/tasks/{task_id}/events")
    assert events[-1].event == "completed"
    # how many batches show as events depends on the machine's pace (coalescing): the
    # contract is the order, never backwards, and 100 at the end
    progress = [e.data["progress"] for e in events if e.data.get("progress") is not None]
    assert progress == sorted(progress) and progress[-1] == 100
    stages = [
        s for e in events if (s := e.data.get("currentStage")) in {"simulating", "summarizing"}
    ]
    assert stages == sorted(stages)  # simulating (if seen) before summarizing

    result = (await client.get(f"{BASE}/{task_id}/result")).json()["data"]
    assert result["simulationId"] == task_id and result["projectId"] == project_id
    assert result["paths"] == 10_000 and result["seed"] == 42
    assert len(result["months"]) == 60
    for series in ("cashFlow", "cashBalance"):
        bands = result[series]
        assert all(len(bands[p]) == 60 for p in ("p10", "p50", "p90"))
        low, mid, high = bands["p10"], bands["p50"], bands["p90"]
        assert all(a <= b <= c for a, b, c in zip(low, mid, high, strict=True))
    breaks = result["breakEven"]
    assert sum(breaks["counts"]) + breaks["never"] == 10_000
    assert 0 <= result["probabilityOutOfCash"] <= 1
    assert result["npv"]["p10"] <= result["median"]["npv"] <= result["npv"]["p90"]
    status = (await client.get(f"{BASE}/{task_id}/status")).json()["data"]
    assert status["kind"] == "financial" and status["progress"] == 100


async def test_the_same_seed_gives_the_same_figures(client: httpx.AsyncClient):
    small = SPEC | {"paths": 1500, "horizonMonths": 24}
    first, second = [await simulate(client, str(uuid.uuid4()), small) for _ in range(2)]
    results = []
    for task_id in (first, second):
        await wait_for_status(client, task_id, {"completed"})
        results.append((await client.get(f"{BASE}/{task_id}/result")).json()["data"])
    keep = ("cashFlow", "npv", "median", "breakEven", "runwayMonths")
    assert [{k: r[k] for k in keep} for r in results][0] == {k: results[1][k] for k in keep}


async def test_a_cancel_from_the_api_ends_it_cancelled(client: httpx.AsyncClient):
    task_id = await simulate(
        client, str(uuid.uuid4()), SPEC | {"paths": 50_000, "horizonMonths": 120}
    )
    cancelled = await client.post(f"{BASE}/{task_id}/cancel")
    # the 50,000 × 120 run takes about a second: the cancel finds it queued or running
    assert cancelled.status_code == 200, cancelled.text
    events = await collect(client, f"/api/v1/tasks/{task_id}/events")
    assert events[-1].data["status"] == "cancelled"
    result = await client.get(f"{BASE}/{task_id}/result")
    assert result.status_code == 409 and result.json()["error"]["code"] == "TASK_CANCELLED"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"revenue": {"initialUnits": 10, "unitPrice": -1}}, "revenue.unitPrice"),
        ({"horizonMonths": 121}, "horizonMonths"),
        ({"paths": 1_000_000}, "paths"),
        ({"uncertainty": {"unitPrice": {"low": 20000, "high": 10000}}}, "uncertainty.unitPrice"),
        ({"revenue": {"initialUnits": 1e300, "unitPrice": 1e300}}, "revenue.initialUnits"),
        ({"uncertainty": {"unitPrice": {"low": -1e300, "high": 1e6}}}, "uncertainty.unitPrice"),
    ],
    ids=[
        "negative-price",
        "horizon-over-120",
        "too-many-paths",
        "range-upside-down",
        "huge-amounts",
        "huge-range",
    ],  # fmt: skip
)
async def test_bad_input_is_a_422_with_the_field_and_queues_nothing(
    client: httpx.AsyncClient, redis: Any, change: dict[str, Any], field: str
):
    project_id = str(uuid.uuid4())
    response = await client.post(simulate_url(project_id), json=SPEC | change)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert any(d["field"].startswith(field) for d in error["details"]), error
    assert await redis.llen(keys.project_simulations(project_id)) == 0


async def test_the_largest_inputs_allowed_give_finite_figures_that_read(
    client: httpx.AsyncClient,
):
    """At every bound at once (the most units, price, growth and months), the figures are
    still finite numbers: the result reads as JSON. The seed is fixed: with a price drawn
    from -1e15..1e15 the sign of the median is the draw's, not the code's."""
    top = 1e15
    spec = {
        "horizonMonths": 120, "paths": 10, "seed": 7, "upfrontInvestment": top,
        "revenue": {"initialUnits": 1e12, "unitPrice": top, "monthlyGrowth": 1},
        "costs": {"fixedMonthly": top, "variableCostPerUnit": 0,
                  "hiring": [{"startMonth": 1, "monthlyCost": top, "count": 1000}]},
        "funding": {"initialCash": top, "rounds": [{"month": 1, "amount": top}]},
        "uncertainty": {"unitPrice": {"low": -top, "high": top}, "monthlyVolatility": 1},
    }  # fmt: skip
    task_id = await simulate(client, str(uuid.uuid4()), spec)
    await wait_for_status(client, task_id, {"completed"})
    result = await client.get(f"{BASE}/{task_id}/result")
    assert result.status_code == 200, result.text
    figures = result.json()["data"]
    numbers = [*figures["cashBalance"]["p90"], figures["median"]["npv"], figures["npv"]["p90"]]
    assert all(math.isfinite(n) for n in numbers) and figures["median"]["npv"] != 0


async def test_a_malformed_project_id_is_not_found(client: httpx.AsyncClient):
    response = await client.post(simulate_url("not-a-project"), json=SPEC)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "PROJECT_NOT_FOUND"


async def test_a_simulation_is_not_found_under_another_kind(client: httpx.AsyncClient):
    task_id = await simulate(client, str(uuid.uuid4()), SPEC | {"paths": 100})
    assert (await client.get(f"/api/v1/evaluations/{task_id}/status")).status_code == 404
    assert (await client.get(f"{BASE}/{uuid.uuid4()}/status")).status_code == 404


async def test_a_simulation_past_the_servers_size_is_a_422_on_paths(private: Any):
    web = private("web", TASKSTREAM_MAX_SIMULATION_CELLS="1200000")
    async with httpx.AsyncClient(base_url=web.url, timeout=10) as http:
        http.headers.update((await signup(http)).headers)
        too_big = await http.post(
            simulate_url(str(uuid.uuid4())), json=SPEC | {"paths": 20_000, "horizonMonths": 120}
        )
        assert too_big.status_code == 422, too_big.text
        detail = too_big.json()["error"]["details"][0]
        assert detail["field"] == "paths" and "1,200,000" in detail["message"]
        fits = await http.post(
            simulate_url(str(uuid.uuid4())), json=SPEC | {"paths": 10_000, "horizonMonths": 120}
        )
        assert fits.status_code == 202
        listed = (await http.get("/api/v1/tasks", params={"kind": "financial"})).json()["data"]
        assert listed["total"] == 1  # the refused one started nothing
