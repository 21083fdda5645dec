"""What a financial simulation takes: its input, validated at the HTTP boundary and again
by the job. No NumPy here, so the web process can validate without loading it
(`jobs/simulation/engine.py` is the model that runs it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_HORIZON = 120
MAX_PATHS = 50_000
# Within these every figure of every path stays finite (the largest cash flow, at the
# most growth over the longest horizon, is about 1e62), so every result can be read.
MAX_AMOUNT = 1e15  # money in the currency's units: above any plan's, in any currency
MAX_UNITS = 1e12
DRIVERS = ("initialUnits", "unitPrice", "monthlyGrowth", "variableCostPerUnit", "fixedMonthly")


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Range(_Input):
    low: float = Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT)
    high: float = Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError("low must not be above high")
        return self


class Revenue(_Input):
    initialUnits: float = Field(ge=0, le=MAX_UNITS)
    unitPrice: float = Field(ge=0, le=MAX_AMOUNT)
    monthlyGrowth: float = Field(default=0, gt=-1, le=1)


class Hire(_Input):
    role: str = Field(default="", max_length=100)
    startMonth: int = Field(ge=1, le=MAX_HORIZON)
    monthlyCost: float = Field(ge=0, le=MAX_AMOUNT)
    count: int = Field(default=1, ge=1, le=1000)


class Costs(_Input):
    fixedMonthly: float = Field(default=0, ge=0, le=MAX_AMOUNT)
    variableCostPerUnit: float = Field(default=0, ge=0, le=MAX_AMOUNT)
    hiring: list[Hire] = Field(default_factory=list, max_length=100)


class FundingRound(_Input):
    month: int = Field(ge=1, le=MAX_HORIZON)
    amount: float = Field(ge=0, le=MAX_AMOUNT)


class Funding(_Input):
    initialCash: float = Field(default=0, ge=0, le=MAX_AMOUNT)
    rounds: list[FundingRound] = Field(default_factory=list, max_length=20)


class Uncertainty(_Input):
    initialUnits: Range | None = None
    unitPrice: Range | None = None
    monthlyGrowth: Range | None = None
    variableCostPerUnit: Range | None = None
    fixedMonthly: Range | None = None
    monthlyVolatility: float = Field(default=0, ge=0, le=1)


class SimulationInput(_Input):
    """What `POST /api/v1/projects/{projectId}/financial/simulate` takes."""

    horizonMonths: int = Field(default=36, ge=1, le=MAX_HORIZON)
    paths: int = Field(default=10_000, ge=1, le=MAX_PATHS)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    discountRateAnnual: float = Field(default=0.1, gt=-1, le=10)
    upfrontInvestment: float = Field(default=0, ge=0, le=MAX_AMOUNT)
    currency: str = Field(default="KRW", pattern=r"^[A-Z]{3}$")
    revenue: Revenue
    costs: Costs = Costs()
    funding: Funding = Funding()
    uncertainty: Uncertainty = Uncertainty()

    @model_validator(mode="after")
    def _consistent(self) -> SimulationInput:
        for driver in DRIVERS:
            spread = getattr(self.uncertainty, driver)
            if spread is not None and not spread.low <= self.base(driver) <= spread.high:
                raise ValueError(f"uncertainty.{driver}: the range must contain the base value")
        months = [h.startMonth for h in self.costs.hiring] + [r.month for r in self.funding.rounds]
        if any(m > self.horizonMonths for m in months):
            raise ValueError("a hire or funding round falls after horizonMonths")
        return self

    def base(self, driver: str) -> float:
        where = self.revenue if driver in Revenue.model_fields else self.costs
        return float(getattr(where, driver))
