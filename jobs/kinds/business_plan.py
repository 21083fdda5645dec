"""The `business_plan` kind: a plan written live from the wizard's answers.

Stages: `analyzing` (the prompt), `generating` (the model's text streamed as `partial`
events, progress and time left from the length written against the length expected),
`formatting` (the text split into its sections, the plan stored). The model writes
Markdown whose section headings carry their key, `## [market] 시장 분석`, so that the
split needs no second model call.
"""

from __future__ import annotations

import re
import time
import uuid
from contextlib import aclosing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobs.errors import JobError
from jobs.kind import JobContext, Kind, KindPolicy
from jobs.language.korean import particle
from jobs.language.model import Model, Prompt
from jobs.plans import SECTION_KEYS, SECTIONS, section_title
from jobs.record.clock import now_iso
from jobs.start import Caller, Prepared, Start

EXPECTED_CHARS = 6000  # a model's plan's usual length, for progress and time left
HEADING = re.compile(r"^##\s*\[(?P<key>[a-z_]+)\][^\n]*$", re.MULTILINE)

Short = Field(min_length=1, max_length=200)
Long = Field(min_length=1, max_length=4000)


class Answers(BaseModel):
    """The wizard's answers. Text is trimmed; required answers may not be blank."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    projectName: str = Short
    industry: str = Short
    targetCustomers: str = Long
    problem: str = Long
    solution: str = Long
    businessModel: str = Long
    competition: str = Field("", max_length=4000)
    team: str = Field("", max_length=4000)
    fundingNeed: str = Field("", max_length=1000)
    freeText: str = Field("", max_length=8000)


Language = Literal["ko", "en"]


class Params(BaseModel):
    answers: Answers
    language: Language
    projectId: str


class GenerateRequest(Answers):
    """The wizard's answers, the project they are for (a new one when not given), and the
    plan's language."""

    projectId: str | None = Field(None, pattern=r"^[0-9a-f-]{36}$")
    language: Language = "ko"


ANSWER_LABELS = {
    "projectName": "Project name",
    "industry": "Industry",
    "targetCustomers": "Target customers",
    "problem": "Problem",
    "solution": "Solution",
    "businessModel": "Business model",
    "competition": "Competition",
    "team": "Team",
    "fundingNeed": "Funding need",
    "freeText": "Other notes",
}


def plan_prompt(answers: dict[str, str], language: str) -> Prompt:
    headings = "\n".join(f"## [{key}] {section_title(key, language)}" for key in SECTION_KEYS)
    facts = "\n".join(
        f"- {label}: {answers[name]}" for name, label in ANSWER_LABELS.items() if answers.get(name)
    )
    text = (
        "You are an experienced startup advisor. Write a business plan for the founder's "
        f"venture below, in {'Korean' if language == 'ko' else 'English'}, as Markdown. "
        "Use exactly these section headings, in this order, each on its own line, "
        f"and nothing before the first:\n{headings}\n\nThe founder's answers:\n{facts}\n"
    )
    return Prompt(text, lambda: offline_plan(answers, language))


def offline_plan(answers: dict[str, str], language: str) -> str:
    """A plan written from templates, for running with no model."""
    name = answers["projectName"]
    ko = language == "ko"
    body = {
        "executive_summary": (
            f"{particle(name, '은')} {answers['industry']} 분야에서 "
            f"{particle(answers['targetCustomers'], '을')} 위한 사업입니다. {answers['solution']}"
            if ko
            else f"{name} serves {answers['targetCustomers']} in {answers['industry']}. "
            f"{answers['solution']}"
        ),
        "problem": answers["problem"],
        "solution": answers["solution"],
        "market": (
            f"주요 고객: {answers['targetCustomers']}. 산업: {answers['industry']}."
            if ko
            else f"Customers: {answers['targetCustomers']}. Industry: {answers['industry']}."
        ),
        "competition": answers.get("competition") or ("정보 없음" if ko else "Not given."),
        "business_model": answers["businessModel"],
        "go_to_market": (
            "초기 고객 인터뷰, 파일럿, 추천 프로그램 순으로 진행합니다."
            if ko
            else "Customer interviews, then a pilot, then a referral programme."
        ),
        "operations": (
            "핵심 운영은 소규모 팀이 직접 수행합니다."
            if ko
            else "A small team runs the core operations."
        ),
        "team": answers.get("team") or ("정보 없음" if ko else "Not given."),
        "financial_overview": (
            f"필요 자금: {answers.get('fundingNeed') or '미정'}."
            if ko
            else f"Funding need: {answers.get('fundingNeed') or 'to be decided'}."
        ),
        "risks": (
            "시장 수요, 실행 속도, 자금 조달이 주요 위험입니다."
            if ko
            else "Demand, speed of execution and funding are the main risks."
        ),
        "milestones": (
            "3개월: 파일럿, 6개월: 첫 매출, 12개월: 손익분기."
            if ko
            else "3 months: pilot; 6 months: first revenue; 12 months: break-even."
        ),
    }
    return "".join(
        f"## [{key}] {section_title(key, language)}\n\n{body[key]}\n\n" for key in SECTION_KEYS
    )


def split_sections(markdown: str, language: str) -> list[dict[str, str]]:
    """The plan's sections from the model's Markdown; missing ones are empty."""
    found: dict[str, str] = {}
    matches = list(HEADING.finditer(markdown))
    ends = [m.start() for m in matches[1:]] + [len(markdown)]
    for match, end in zip(matches, ends[: len(matches)], strict=True):
        if match["key"] in SECTION_KEYS:
            found[match["key"]] = markdown[match.end() : end].strip()
    if not found:
        raise JobError(
            "the model's text has none of the plan's sections", code="MALFORMED_MODEL_OUTPUT"
        )
    return [
        {"key": key, "title": section_title(key, language), "content": found.get(key, "")}
        for key, _, _ in SECTIONS
    ]


async def business_plan(job: JobContext, params: Params) -> dict[str, Any]:
    answers, language = params.answers.model_dump(), params.language
    model: Model = job.worker["model"]
    await job.progress.update(progress=2, stage="analyzing")
    prompt = plan_prompt(answers, language)
    await job.progress.update(progress=10, stage="generating")

    expected = len(prompt.offline()) if model.offline else EXPECTED_CHARS
    parts: list[str] = []
    written = 0
    started = time.monotonic()
    # closed on every way out, so that a cancelled task stops the model's stream at once
    async with aclosing(model.stream_text(prompt)) as chunks:
        async for chunk in chunks:
            parts.append(chunk)
            written += len(chunk)
            await job.progress.partial(chunk)
            fraction = min(0.99, written / expected)
            pace = written / max(time.monotonic() - started, 1e-3)
            await job.progress.update(
                progress=10 + int(75 * fraction),
                estimated_remaining=max(expected - written, 0) / pace + 1,
            )

    await job.progress.update(progress=88, stage="formatting", estimated_remaining=1)
    markdown = "".join(parts)
    plan = {
        "businessPlanId": str(uuid.uuid4()),
        "projectId": params.projectId,
        "taskId": job.task_id,
        "title": answers["projectName"],
        "language": language,
        "sections": split_sections(markdown, language),
        "markdown": markdown,
        "offline": model.offline,
        "model": model.name,
        "answers": answers,
        "createdAt": now_iso(),
    }
    await job.plans.save(plan)
    return plan


async def prepare(caller: Caller, body: GenerateRequest) -> Prepared:
    answers = Answers.model_validate(body.model_dump(exclude={"projectId", "language"}))
    project = await caller.project(body.projectId or str(uuid.uuid4()), claim=True)
    params = Params(answers=answers, language=body.language, projectId=project)
    return Prepared(params, 45 if caller.settings.gemini.api_key else 4)


PATH = "/api/v1/business-plan"
KIND = Kind(
    "business_plan",
    Params,
    KindPolicy(timeout_s=300, max_tries=3, retry_backoff_s=2),
    business_plan,
    path=PATH,
    start=Start(
        PATH + "/generate",
        GenerateRequest,
        prepare,
        "Write a business plan from the wizard's answers",
        (404, 429),
    ),
)
