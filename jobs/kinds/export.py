"""The `export` kind: a project's latest plan (with its evaluation and financial simulation)
rendered as Markdown, DOCX or PDF, one section at a time.

The file is rendered into a scratch file and then stored whole (renamed into place in a
directory, uploaded to a bucket: `jobs/documents/store.py`), so a download never sees half a
file; a failed or cancelled attempt removes what it wrote. Files are stored as
`{exportId}.{format}` and removed with their task (`sweep_exports`, run by the worker
beside the reaper).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobs.documents.files import CONTENT_TYPES, EXTRA_PARTS, PART_KEYS, export_name
from jobs.documents.parts import Part, Table, blocks_from_markdown, find_font, money
from jobs.documents.store import ExportStore, StoreUnavailable
from jobs.errors import JobError, TransientError
from jobs.kind import JobContext, Kind, KindPolicy
from jobs.record.clock import now_iso
from jobs.record.ids import is_task_id
from jobs.record.tasks import TaskStore
from jobs.start import Caller, Prepared, Refused, Start

PATH = "/api/v1/exports"
PartKey = Literal[PART_KEYS]  # type: ignore[valid-type]


class Choice(BaseModel):
    """What to export: the format, which parts (all by default), in which language."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["pdf", "docx", "md"]
    sections: list[PartKey] | None = Field(default=None, min_length=1)
    language: Literal["ko", "en"] | None = None


class Params(Choice):
    projectId: str


logger = logging.getLogger(__name__)


async def export(job: JobContext, params: Params) -> dict[str, Any]:
    # the office formats' libraries load here, in the worker: the web process reads this
    # module for `Params` and must stay without them
    from jobs.documents.office import writer_for

    fmt = params.format
    plans = job.plans
    await job.progress.update(progress=2, stage="collecting")
    plan = await plans.latest(params.projectId)
    if plan is None:
        raise JobError("the project has no business plan to export", code="PLAN_NOT_FOUND")
    language: str = params.language or plan.get("language", "ko")
    evaluation = await plans.latest_evaluation(plan["businessPlanId"])
    simulation = await plans.latest_simulation(params.projectId)
    parts = build_parts(plan, evaluation, simulation, language, params.sections)
    font = find_font(job.settings.font_path)
    if fmt == "pdf" and font is None:
        raise JobError(
            "no font with Hangul for the PDF: install fonts-nanum or set TASKSTREAM_FONT",
            code="FONT_MISSING",
        )
    title = plan["title"]
    writer = await asyncio.to_thread(writer_for, fmt, title, language, font)
    exports: ExportStore = job.worker["exports"]
    name = export_name(job.task_id, fmt)
    partial = exports.scratch(name, job.attempt)
    try:
        for done, part in enumerate(parts, start=1):
            await job.progress.update(
                progress=5 + 85 * (done - 1) // len(parts), stage=f"rendering:{part.key}"
            )
            await asyncio.to_thread(writer.add, part)
        await job.progress.update(progress=92, stage="saving")
        await asyncio.to_thread(writer.save, partial)
        digest = await asyncio.to_thread(sha256_of, partial)
        size = partial.stat().st_size
        await job.progress.update(progress=96, stage="storing")
        try:
            await exports.put(partial, name, CONTENT_TYPES[fmt])
        except StoreUnavailable as error:
            raise TransientError(str(error), code="EXPORT_STORE_UNAVAILABLE") from error
    finally:
        partial.unlink(missing_ok=True)
    suffix = "사업계획서" if language == "ko" else "business plan"
    return {
        "exportId": job.task_id,
        "projectId": params.projectId,
        "businessPlanId": plan["businessPlanId"],
        "format": fmt,
        "fileName": f"{safe_name(title)} {suffix}.{fmt}",
        "contentType": CONTENT_TYPES[fmt],
        "size": size,
        "sha256": digest,
        "sections": [part.key for part in parts],
        "downloadUrl": f"{PATH}/{job.task_id}/download",
        "createdAt": now_iso(),
    }


def build_parts(
    plan: dict[str, Any],
    evaluation: dict[str, Any] | None,
    simulation: dict[str, Any] | None,
    language: str,
    wanted: list[str] | None,
) -> list[Part]:
    ko = language == "ko"
    parts = [
        Part(s["key"], s["title"], blocks_from_markdown(s["content"]))
        for s in plan["sections"]
        if s["content"].strip()
    ]
    if evaluation is not None:
        parts.append(evaluation_part(evaluation, ko))
    if simulation is not None:
        parts.append(financial_part(simulation, ko))
    if wanted is not None:
        parts = [p for p in parts if p.key in wanted]
    if not parts:
        raise JobError("none of the asked-for sections has content", code="NOTHING_TO_EXPORT")
    return parts


def evaluation_part(evaluation: dict[str, Any], ko: bool) -> Part:
    header = ("기준", "점수", "근거") if ko else ("Criterion", "Score", "Reasons")
    rows = tuple((s["criterion"], str(s["score"]), s["reasons"]) for s in evaluation["scores"])
    overall = f"{'종합 점수' if ko else 'Overall score'}: {evaluation['overallScore']}"
    return Part(
        "evaluation",
        "평가 결과" if ko else "Evaluation",
        (("p", overall), Table(header, rows), ("p", evaluation["overallFeedback"])),
    )


def financial_part(simulation: dict[str, Any], ko: bool) -> Part:
    def month(value: int | None) -> str:
        if value is None:
            return "기간 내 없음" if ko else "not within the horizon"
        return f"{value}개월" if ko else f"month {value}"

    median = simulation["median"]
    irr = median["irrAnnual"]
    summary = (
        ("경로 수" if ko else "Paths", f"{simulation['paths']:,}"),
        ("손익분기 (중앙값)" if ko else "Break-even (median)", month(median["breakEvenMonth"])),
        (
            "현금 소진 확률" if ko else "Probability of running out of cash",
            f"{simulation['probabilityOutOfCash']:.1%}",
        ),
        ("NPV (중앙값)" if ko else "NPV (median)", money(median["npv"])),
        (
            "IRR (연, 중앙값)" if ko else "IRR (annual, median)",
            "—" if irr is None else f"{irr:.1%}",
        ),
    )
    bands = simulation["cashBalance"]
    yearly = tuple(
        (month(m), *(money(bands[p][m - 1]) for p in ("p10", "p50", "p90")))
        for m in simulation["months"]
        if m % 12 == 0 or m == simulation["months"][-1]
    )
    header = ("시점" if ko else "Month", "P10", "P50", "P90")
    caption = f"{'현금 잔고' if ko else 'Cash balance'} ({simulation['currency']})"
    return Part(
        "financial",
        "재무 시뮬레이션" if ko else "Financial simulation",
        (
            Table(("항목", "값") if ko else ("Figure", "Value"), summary),
            ("h3", caption),
            Table(header, yearly),
        ),
    )


def safe_name(title: str) -> str:
    """A title usable as a file name on every system (UTF-8 kept)."""
    return re.sub(r'[\x00-\x1f\\/:*?"<>|]+', " ", title).strip()[:100] or "export"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 16):
            digest.update(chunk)
    return digest.hexdigest()


async def sweep_exports(store: TaskStore, exports: ExportStore) -> list[str]:
    """Remove the files of exports whose task has expired; returns the ids removed."""
    removed: list[str] = []
    for name in await exports.names():
        export_id = name.partition(".")[0]
        if is_task_id(export_id) and await store.get(export_id) is None:
            await exports.delete(name)
            removed.append(export_id)
    if removed:
        logger.info("expired exports removed", extra={"count": len(removed)})
    return removed


# a document is rendered whole in memory: four at once in a worker
POLICY = KindPolicy(timeout_s=300, max_tries=2, retry_backoff_s=2, per_worker=4)


async def prepare(caller: Caller, body: Choice) -> Prepared:
    """Refused before any work when the project has nothing to export, or lacks a part
    asked for by name."""
    project = await caller.project(caller.path_params["project_id"], claim=False)
    plans = caller.plans
    plan = await plans.latest(project)
    if plan is None:
        raise Refused(404, "PLAN_NOT_FOUND", "the project has no business plan to export")
    available = {
        "evaluation": await plans.latest_evaluation(plan["businessPlanId"]) is not None,
        "financial": await plans.latest_simulation(project) is not None,
    }
    missing = [key for key in body.sections or () if key in EXTRA_PARTS and not available[key]]
    if missing:
        raise Refused(
            409,
            "SECTION_UNAVAILABLE",
            f"the project has no {' or '.join(missing)} to export yet",
            details={"sections": missing},
        )
    return Prepared(Params(projectId=project, **body.model_dump()), 3)


START = Start(
    "/api/v1/projects/{project_id}/export",
    Choice,
    prepare,
    "Render the project as a document",
    (404, 409, 429),
    "exportId",
    ("download",),
)
KIND = Kind("export", Params, POLICY, export, path=PATH, start=START)
