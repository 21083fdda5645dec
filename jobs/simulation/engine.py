"""A startup's monthly cash flow, simulated over many paths at once (NumPy, vectorised).

The model, month m = 1..H, for each path:

    units[m]    = initialUnits · (1 + monthlyGrowth)^(m-1) · demand noise[m]
    cashFlow[m] = units[m] · (unitPrice − variableCostPerUnit) − fixedMonthly − hiring[m]
    cash[m]     = initialCash − upfrontInvestment + Σ_{k≤m} (cashFlow[k] + funding[k])

Drivers with an uncertainty range are drawn once per path from a triangular distribution
(low, the base value, high); `monthlyVolatility` adds a random walk to log-demand. With no
range and no volatility every path is the same, and the figures are the closed forms.
This module does no I/O: the `financial` job runs it batch by batch, off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from jobs.simulation.input import DRIVERS, Range, SimulationInput

Array = npt.NDArray[np.float64]
BATCH_PATHS = 1_000


@dataclass(frozen=True)
class Batch:
    """One batch of paths: monthly cash flow and cash, and each path's figures."""

    cash_flow: Array  # (paths, H)
    cash: Array  # (paths, H)
    npv: Array  # (paths,)
    break_even: npt.NDArray[np.int64]  # first month with cash flow ≥ 0; H+1: never
    out_of_cash: npt.NDArray[np.int64]  # first month with cash < 0; H+1: never


def monthly_rate(annual: float) -> float:
    return float((1 + annual) ** (1 / 12) - 1)


def simulate_batch(spec: SimulationInput, paths: int, rng: np.random.Generator) -> Batch:
    horizon = spec.horizonMonths
    months = np.arange(1, horizon + 1)
    drawn = {driver: _draw(spec, driver, paths, rng)[:, None] for driver in DRIVERS}
    units = drawn["initialUnits"] * (1 + drawn["monthlyGrowth"]) ** (months - 1)
    sigma = spec.uncertainty.monthlyVolatility
    if sigma > 0:
        steps = sigma * rng.standard_normal((paths, horizon)) - sigma**2 / 2
        units = units * np.exp(np.cumsum(steps, axis=1))
    hiring = np.zeros(horizon)
    for hire in spec.costs.hiring:
        hiring[hire.startMonth - 1 :] += hire.monthlyCost * hire.count
    funding = np.zeros(horizon)
    for round_ in spec.funding.rounds:
        funding[round_.month - 1] += round_.amount
    margin = drawn["unitPrice"] - drawn["variableCostPerUnit"]
    cash_flow = units * margin - drawn["fixedMonthly"] - hiring
    start = spec.funding.initialCash - spec.upfrontInvestment
    cash = start + np.cumsum(cash_flow + funding, axis=1)
    discount = (1 + monthly_rate(spec.discountRateAnnual)) ** -months.astype(np.float64)
    return Batch(
        cash_flow=cash_flow,
        cash=cash,
        npv=cash_flow @ discount - spec.upfrontInvestment,
        break_even=_first(cash_flow >= 0),
        out_of_cash=_first(cash < 0),
    )


def _draw(spec: SimulationInput, driver: str, paths: int, rng: np.random.Generator) -> Array:
    base = spec.base(driver)
    spread: Range | None = getattr(spec.uncertainty, driver)
    if spread is None or spread.low == spread.high:
        return np.full(paths, base)
    return rng.triangular(spread.low, base, spread.high, paths)


def _first(condition: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """The 1-based month each row first meets the condition; H+1 where it never does."""
    never = condition.shape[1] + 1
    months: npt.NDArray[np.int64] = np.where(
        condition.any(axis=1), condition.argmax(axis=1) + 1, never
    ).astype(np.int64)
    return months


def irr(flows: Array) -> float | None:
    """The periodic rate at which the flows (flows[0] now) are worth nothing, if one is.

    The roots of Σ flows[t]·y^t with y = 1/(1+rate); of several, the one nearest 0.
    """
    if not (flows.min() < 0 < flows.max()):
        return None
    nonzero = np.flatnonzero(flows)
    flows = flows[: nonzero[-1] + 1]
    roots = np.roots(flows[::-1])
    real = roots[(np.abs(roots.imag) < 1e-9) & (roots.real > 0)].real
    if real.size == 0:
        return None
    rates = 1 / real - 1
    return float(rates[np.argmin(np.abs(rates))])


def summarize(spec: SimulationInput, batches: list[Batch]) -> dict[str, Any]:
    """The figures a founder reads and a chart draws, over all paths."""
    horizon = spec.horizonMonths
    cash_flow = np.concatenate([b.cash_flow for b in batches])
    cash = np.concatenate([b.cash for b in batches])
    npv = np.concatenate([b.npv for b in batches])
    break_even = np.concatenate([b.break_even for b in batches])
    out_of_cash = np.concatenate([b.out_of_cash for b in batches])
    median_path = int(np.argsort(npv, kind="stable")[(len(npv) - 1) // 2])  # as "lower"
    monthly_irr = irr(np.concatenate([[-spec.upfrontInvestment], cash_flow[median_path]]))
    out = _distribution(out_of_cash, horizon)
    return {
        "months": list(range(1, horizon + 1)),
        "cashFlow": _bands(cash_flow),
        "cashBalance": _bands(cash),
        "breakEven": _distribution(break_even, horizon),
        "outOfCash": out,
        "probabilityOutOfCash": out["probability"],
        # months the cash lasts (None: past the horizon)
        "runwayMonths": {p: None if out[p] is None else out[p] - 1 for p in ("p10", "p50", "p90")},
        "npv": {name: round(v, 2) for name, v in _percentiles(npv).items()},
        "median": {
            "npv": round(float(npv[median_path]), 2),
            "irrMonthly": None if monthly_irr is None else round(monthly_irr, 6),
            "irrAnnual": None if monthly_irr is None else round((1 + monthly_irr) ** 12 - 1, 6),
            "breakEvenMonth": _month_or_none(float(break_even[median_path]), horizon),
            "cashFlow": _rounded(cash_flow[median_path]),
        },
    }


def _percentiles(values: Array) -> dict[str, float]:
    p10, p50, p90 = np.percentile(values, [10, 50, 90], method="lower")
    return {"p10": float(p10), "p50": float(p50), "p90": float(p90)}


def _bands(values: Array) -> dict[str, list[float]]:
    bands = np.percentile(values, [10, 50, 90], axis=0, method="lower")
    return {name: _rounded(band) for name, band in zip(("p10", "p50", "p90"), bands, strict=True)}


def _distribution(months: npt.NDArray[np.int64], horizon: int) -> dict[str, Any]:
    """How many paths reach the event in each month, and the percentiles of that month."""
    counts = np.bincount(months, minlength=horizon + 2)
    return {
        "probability": round(float((months <= horizon).mean()), 4),
        "counts": counts[1 : horizon + 1].tolist(),
        "never": int(counts[horizon + 1]),
        **{
            name: _month_or_none(value, horizon)
            for name, value in _percentiles(months.astype(np.float64)).items()
        },
    }


def _month_or_none(month: float, horizon: int) -> int | None:
    return None if month > horizon else int(month)


def _rounded(values: Array) -> list[float]:
    return [round(float(v), 2) for v in values]
