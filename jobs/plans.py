"""Business plans and the projects they belong to: the records generation produces.

A plan is stored whole, once, after it has been generated and parsed: a failed or
cancelled generation leaves no half-written plan. Plans, their evaluations and the
project's financial simulations are kept without expiry (they are the user's documents);
each project lists its plans and simulations, each plan its evaluations, newest first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from jobs.infra import keys

# (key, English title, Korean title), in the order a plan presents them
SECTIONS = (
    ("executive_summary", "Executive summary", "요약"),
    ("problem", "Problem", "문제 정의"),
    ("solution", "Solution", "해결책"),
    ("market", "Market", "시장 분석"),
    ("competition", "Competition", "경쟁 분석"),
    ("business_model", "Business model", "비즈니스 모델"),
    ("go_to_market", "Go-to-market", "시장 진입 전략"),
    ("operations", "Operations", "운영 계획"),
    ("team", "Team", "팀 구성"),
    ("financial_overview", "Financial overview", "재무 개요"),
    ("risks", "Risks", "위험 요인"),
    ("milestones", "Milestones", "마일스톤"),
)
SECTION_KEYS = tuple(key for key, _, _ in SECTIONS)


def section_title(key: str, language: str) -> str:
    for k, english, korean in SECTIONS:
        if k == key:
            return korean if language == "ko" else english
    raise KeyError(key)


class PlanStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def save(self, plan: dict[str, Any]) -> None:
        plan_id = plan["businessPlanId"]
        await self._save(keys.plan(plan_id), plan, keys.project_plans(plan["projectId"]), plan_id)

    async def save_evaluation(self, evaluation: dict[str, Any]) -> None:
        evaluation_id = evaluation["evaluationId"]
        index = keys.plan_evaluations(evaluation["businessPlanId"])
        await self._save(keys.evaluation(evaluation_id), evaluation, index, evaluation_id)

    async def save_simulation(self, simulation: dict[str, Any]) -> None:
        simulation_id = simulation["simulationId"]
        index = keys.project_simulations(simulation["projectId"])
        await self._save(keys.simulation(simulation_id), simulation, index, simulation_id)

    async def _save(self, key: str, record: dict[str, Any], index: str, record_id: str) -> None:
        """The record, and its id first in its owner's list, at once."""
        async with self.redis.pipeline(transaction=True) as tx:
            tx.set(key, json.dumps(record, ensure_ascii=False))
            tx.lpush(index, record_id)
            await tx.execute()

    async def claim_project(self, project_id: str, owner: str) -> bool:
        """Make `owner` the project's owner if it has none; whether it is theirs now."""
        earlier = await self.redis.set(keys.project_owner(project_id), owner, nx=True, get=True)
        return earlier is None or earlier == owner

    async def project_owner(self, project_id: str) -> str | None:
        owner: str | None = await self.redis.get(keys.project_owner(project_id))
        return owner

    async def get(self, plan_id: str) -> dict[str, Any] | None:
        return await self._load(keys.plan(plan_id))

    async def latest(self, project_id: str) -> dict[str, Any] | None:
        """The project's newest plan."""
        return await self._newest(keys.project_plans(project_id), keys.plan)

    async def latest_evaluation(self, plan_id: str) -> dict[str, Any] | None:
        return await self._newest(keys.plan_evaluations(plan_id), keys.evaluation)

    async def latest_simulation(self, project_id: str) -> dict[str, Any] | None:
        return await self._newest(keys.project_simulations(project_id), keys.simulation)

    async def _newest(self, index: str, key: Callable[[str], str]) -> dict[str, Any] | None:
        newest: str | None = await self.redis.lindex(index, 0)  # type: ignore[misc]
        return None if newest is None else await self._load(key(newest))

    async def _load(self, key: str) -> dict[str, Any] | None:
        raw = await self.redis.get(key)
        return None if raw is None else dict(json.loads(raw))
