"""The `evaluation` kind: a business plan scored on a rubric, as structured JSON.

Stages: `analyzing` (the plan), `evaluating` (the model answers JSON with a schema),
`formatting` (the rubric checked complete, the overall score computed).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobs.errors import JobError
from jobs.kind import JobContext, Kind, KindPolicy
from jobs.language.model import Model, Prompt
from jobs.plans import SECTION_KEYS
from jobs.start import Caller, Prepared, Start

Criterion = Literal["market", "feasibility", "differentiation", "financial_soundness", "team"]
CRITERIA: tuple[Criterion, ...] = (
    "market", "feasibility", "differentiation", "financial_soundness", "team",
)  # fmt: skip


class InlineSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=f"^({'|'.join(SECTION_KEYS)})$")
    content: str = Field(max_length=20000)


class InlinePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    sections: list[InlineSection] = Field(min_length=1, max_length=len(SECTION_KEYS))


class Params(BaseModel):
    """A stored plan by id, or a plan inline: exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    businessPlanId: str | None = None
    plan: InlinePlan | None = None
    language: Literal["ko", "en"] | None = None

    @model_validator(mode="after")
    def _one_plan(self) -> Params:
        if (self.businessPlanId is None) == (self.plan is None):
            raise ValueError("give either businessPlanId or plan")
        return self


class CriterionScore(BaseModel):
    criterion: Criterion
    score: int = Field(ge=0, le=100)
    reasons: str


class EvaluationAnswer(BaseModel):
    scores: list[CriterionScore]
    overallFeedback: str


def evaluation_prompt(plan: dict[str, Any], language: str) -> Prompt:
    text = (
        "You are an investor reviewing a startup's business plan. Score it from 0 to 100 on "
        f"each of: {', '.join(CRITERIA)}, each with the reasons, and give overall feedback, "
        f"in {'Korean' if language == 'ko' else 'English'}. Answer as JSON.\n\n"
        f"The plan:\n{plan_json(plan)}"
    )
    return Prompt(text, lambda: offline_evaluation(plan, language))


def offline_evaluation(plan: dict[str, Any], language: str) -> dict[str, Any]:
    """Scores from how much each relevant section says, for running with no model."""
    sections = {s["key"]: s["content"] for s in plan["sections"]}
    basis = {
        "market": ("market", "competition"),
        "feasibility": ("solution", "operations"),
        "differentiation": ("competition", "solution"),
        "financial_soundness": ("financial_overview", "business_model"),
        "team": ("team",),
    }
    ko = language == "ko"
    scores = []
    for criterion in CRITERIA:
        written = sum(len(sections.get(key, "")) for key in basis[criterion])
        score = min(90, 40 + written // 10)
        reasons = (
            f"관련 항목 분량 {written}자 기준의 오프라인 평가입니다."
            if ko
            else f"Offline estimate from {written} characters in the related sections."
        )
        scores.append({"criterion": criterion, "score": score, "reasons": reasons})
    feedback = (
        "각 항목의 분량을 기준으로 한 간이 평가입니다. 항목을 구체적으로 채울수록 점수가 오릅니다."
        if ko
        else "A quick estimate from how much each section says; fuller sections score higher."
    )
    return {"scores": scores, "overallFeedback": feedback}


async def evaluation(job: JobContext, params: Params) -> dict[str, Any]:
    model: Model = job.worker["model"]
    await job.progress.update(progress=5, stage="analyzing")
    if params.plan is not None:
        plan: dict[str, Any] | None = params.plan.model_dump()
    else:
        plan = await job.plans.get(params.businessPlanId or "")
    if plan is None:
        raise JobError("the business plan no longer exists", code="PLAN_NOT_FOUND")
    language: str = params.language or plan.get("language", "ko")
    await job.progress.update(progress=20, stage="evaluating")
    answer = await model.json(evaluation_prompt(plan, language), EvaluationAnswer)
    await job.progress.update(progress=90, stage="formatting")
    by_criterion = {s.criterion: s for s in answer.scores}
    missing = [c for c in CRITERIA if c not in by_criterion]
    if missing:
        raise JobError(
            f"the model's evaluation leaves out {', '.join(missing)}",
            code="MALFORMED_MODEL_OUTPUT",
        )
    scores = [by_criterion[c].model_dump() for c in CRITERIA]
    result = {
        "evaluationId": job.task_id,
        "businessPlanId": plan.get("businessPlanId"),
        "scores": scores,
        "overallScore": round(sum(s["score"] for s in scores) / len(scores)),
        "overallFeedback": answer.overallFeedback,
        "offline": model.offline,
        "model": model.name,
    }
    if result["businessPlanId"] is not None:
        await job.plans.save_evaluation(result)
    return result


def plan_json(plan: dict[str, Any]) -> str:
    """A plan as the evaluation prompt shows it."""
    sections = {s["key"]: s["content"] for s in plan["sections"]}
    return json.dumps({"title": plan["title"], "sections": sections}, ensure_ascii=False)


async def prepare(caller: Caller, body: Params) -> Prepared:
    if body.businessPlanId is not None:
        await caller.plan(body.businessPlanId)  # the caller's, or 404
    return Prepared(body, 20 if caller.settings.gemini.api_key else 2)


PATH = "/api/v1/evaluations"
KIND = Kind(
    "evaluation",
    Params,
    KindPolicy(timeout_s=300, max_tries=3, retry_backoff_s=2),
    evaluation,
    path=PATH,
    start=Start(PATH, Params, prepare, "Score a business plan", (404, 429), "evaluationId"),
)
