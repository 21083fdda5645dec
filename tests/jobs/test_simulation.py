"""The cash-flow model against hand-computed cases: no variance gives the closed forms."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from jobs.simulation.engine import irr, monthly_rate, simulate_batch, summarize
from jobs.simulation.input import SimulationInput


def run(paths: int = 3, seed: int = 7, **fields: Any) -> dict[str, Any]:
    spec = SimulationInput.model_validate({"paths": paths, **fields})
    rng = np.random.default_rng(seed)
    return summarize(spec, [simulate_batch(spec, paths, rng)])


def test_a_flat_business_gives_the_annuity_npv_and_its_irr() -> None:
    # 100 units × (10 − 0) − 500 fixed = 500 a month for 12 months, 3,000 up front
    annual = 1.01**12 - 1  # 1 % a month
    figures = run(
        horizonMonths=12,
        discountRateAnnual=annual,
        upfrontInvestment=3000,
        revenue={"initialUnits": 100, "unitPrice": 10},
        costs={"fixedMonthly": 500},
        funding={"initialCash": 3000},
    )
    annuity = 500 * (1 - 1.01**-12) / 0.01
    assert figures["median"]["npv"] == pytest.approx(annuity - 3000, abs=0.01)
    assert all(v == pytest.approx(annuity - 3000, abs=0.01) for v in figures["npv"].values())
    rate = figures["median"]["irrMonthly"]
    assert 500 * (1 - (1 + rate) ** -12) / rate == pytest.approx(3000, rel=1e-5)
    assert figures["median"]["irrAnnual"] == pytest.approx((1 + rate) ** 12 - 1, rel=1e-5)
    assert figures["cashFlow"]["p10"] == [500.0] * 12 == figures["cashFlow"]["p90"]
    assert figures["breakEven"]["p50"] == 1 and figures["breakEven"]["probability"] == 1
    assert figures["probabilityOutOfCash"] == 0 and figures["runwayMonths"]["p50"] is None


def test_one_month_at_ten_percent_has_an_irr_of_exactly_ten_percent() -> None:
    figures = run(
        horizonMonths=1, upfrontInvestment=100, revenue={"initialUnits": 11, "unitPrice": 10}
    )
    assert figures["median"]["irrMonthly"] == pytest.approx(0.10, abs=1e-9)
    assert figures["median"]["irrAnnual"] == pytest.approx(1.1**12 - 1, rel=1e-6)


def test_growth_reaches_break_even_in_the_month_the_closed_form_gives() -> None:
    # 1,000·1.1^(m−1) − 1,500 ≥ 0  ⇔  m − 1 ≥ ln 1.5 / ln 1.1 = 4.25  ⇔  m = 6
    figures = run(
        horizonMonths=12,
        revenue={"initialUnits": 10, "unitPrice": 100, "monthlyGrowth": 0.1},
        costs={"fixedMonthly": 1500},
        funding={"initialCash": 1000},
    )
    assert 1 + math.ceil(math.log(1.5) / math.log(1.1)) == 6
    assert figures["breakEven"]["p50"] == 6 == figures["median"]["breakEvenMonth"]
    assert figures["breakEven"]["counts"][5] == 3  # all three paths, in month 6
    # cash: 1,000 − 500 = 500, then − 400 = 100, then − 290 < 0: out of cash in month 3
    assert figures["cashBalance"]["p50"][:3] == [500.0, 100.0, -190.0]
    assert figures["outOfCash"]["p50"] == 3 and figures["runwayMonths"]["p50"] == 2
    assert figures["probabilityOutOfCash"] == 1


def test_hires_and_funding_rounds_land_in_their_months() -> None:
    figures = run(
        horizonMonths=4,
        revenue={"initialUnits": 0, "unitPrice": 10},
        costs={"hiring": [{"role": "개발자", "startMonth": 3, "monthlyCost": 200, "count": 2}]},
        funding={"initialCash": 1000, "rounds": [{"month": 2, "amount": 5000}]},
    )
    assert figures["cashFlow"]["p50"] == [0.0, 0.0, -400.0, -400.0]
    assert figures["cashBalance"]["p50"] == [1000.0, 6000.0, 5600.0, 5200.0]
    assert figures["median"]["irrMonthly"] is None  # no positive flow: no rate


def test_a_price_range_spreads_the_paths_within_it_around_the_base() -> None:
    figures = run(
        paths=4000,
        horizonMonths=2,
        revenue={"initialUnits": 100, "unitPrice": 10},
        uncertainty={"unitPrice": {"low": 8, "high": 12}},
    )
    p10, p50, p90 = (figures["cashFlow"][p][0] for p in ("p10", "p50", "p90"))
    assert 800 < p10 < p50 < p90 < 1200
    assert p50 == pytest.approx(1000, rel=0.02)  # a symmetric triangle's median is its mode


def test_a_seed_gives_the_same_figures_and_another_seed_others() -> None:
    fields: dict[str, Any] = {
        "paths": 500,
        "horizonMonths": 24,
        "revenue": {"initialUnits": 50, "unitPrice": 30, "monthlyGrowth": 0.05},
        "costs": {"fixedMonthly": 1500},
        "uncertainty": {"monthlyGrowth": {"low": 0, "high": 0.1}, "monthlyVolatility": 0.1},
    }
    assert run(seed=1, **fields) == run(seed=1, **fields)
    assert run(seed=1, **fields)["npv"] != run(seed=2, **fields)["npv"]


def test_irr_is_none_without_a_sign_change_and_exact_for_two_periods() -> None:
    assert irr(np.array([100.0, 10.0])) is None
    # −100 + 60/(1+r) + 60/(1+r)^2 = 0  ⇔  y = 1/(1+r) solves 60y² + 60y − 100 = 0
    y = (-60 + math.sqrt(60**2 + 4 * 60 * 100)) / 120
    assert irr(np.array([-100.0, 60.0, 60.0])) == pytest.approx(1 / y - 1, abs=1e-12)


def test_monthly_rate_compounds_to_the_annual_rate() -> None:
    assert (1 + monthly_rate(0.1)) ** 12 == pytest.approx(1.1)


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"revenue": {"initialUnits": 1, "unitPrice": -5}}, ("revenue", "unitPrice")),
        ({"horizonMonths": 121}, ("horizonMonths",)),
        ({"paths": 0}, ("paths",)),
        ({"uncertainty": {"unitPrice": {"low": 12, "high": 8}}}, ("uncertainty", "unitPrice")),
        ({"uncertainty": {"unitPrice": {"low": 20, "high": 30}}}, ()),
        ({"funding": {"rounds": [{"month": 40, "amount": 1}]}}, ()),
        ({"costs": {"fixedMonthly": 1, "bonus": 2}}, ("costs", "bonus")),
    ],
    ids=[
        "negative-price",
        "horizon-over-120",
        "no-paths",
        "range-upside-down",
        "range-without-base",
        "round-after-horizon",
        "unknown-field",
    ],
)
def test_bad_input_is_refused_with_where_it_is(
    fields: dict[str, Any], where: tuple[str, ...]
) -> None:
    spec: dict[str, Any] = {"horizonMonths": 36, "revenue": {"initialUnits": 1, "unitPrice": 10}}
    with pytest.raises(ValidationError) as raised:
        SimulationInput.model_validate(spec | fields)
    assert any(
        tuple(str(p) for p in e["loc"])[: len(where)] == where for e in raised.value.errors()
    )
