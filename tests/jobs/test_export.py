"""The `export` job: progress per section, a file only when whole (in a directory and in a
bucket), a clear font error."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from jobs.accounts import UserStore
from jobs.documents.store import Bucket, Directory, ExportStore
from jobs.errors import JobError
from jobs.infra.config import Settings
from jobs.kind import JobContext
from jobs.kinds.export import Params, export
from jobs.plans import SECTIONS, PlanStore
from jobs.record import keys
from jobs.record.tasks import TaskStore
from jobs.runtime.progress import Progress
from tests.conftest import CREDENTIALS, new_bucket


async def saved_plan(store: TaskStore) -> str:
    project_id = str(uuid.uuid4())
    sections = [{"key": k, "title": ko, "content": f"{ko} 내용\n- 항목"} for k, _, ko in SECTIONS]
    plan = {"businessPlanId": str(uuid.uuid4()), "projectId": project_id, "title": "동네빵집",
            "language": "ko", "sections": sections}  # fmt: skip
    await PlanStore(store.redis).save(plan)
    return project_id


@pytest.fixture(params=["directory", "bucket"])
def exports(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ExportStore:
    if request.param == "directory":
        return Directory(tmp_path / "exports")
    s3: str = request.getfixturevalue("s3")
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    bucket = f"exports-{uuid.uuid4().hex[:12]}"
    new_bucket(s3, bucket)
    return Bucket(bucket, "exports", s3)


async def job_for(store: TaskStore, settings: Settings, exports: ExportStore) -> JobContext:
    task = await store.create("export")
    await store.start(task.id, 1)
    progress = Progress(store, task.id, attempt=1, interval=0)
    return JobContext(
        task.id,
        "export",
        1,
        progress,
        store,
        PlanStore(store.redis),
        UserStore(store.redis),
        settings,
        {"exports": exports},
    )


async def stages(store: TaskStore, task_id: str) -> list[str]:
    entries = await store.redis.xrange(keys.events(task_id))
    data = [json.loads(fields["data"]) for _, fields in entries if fields["event"] == "progress"]
    return [d["currentStage"] for d in data if "currentStage" in d]


async def test_every_section_is_a_progress_stage_and_the_file_is_whole(
    store: TaskStore, settings: Settings, exports: ExportStore
):
    job = await job_for(store, settings, exports)
    result = await export(
        job, Params.model_validate({"projectId": await saved_plan(store), "format": "pdf"})
    )
    keys = [key for key, _, _ in SECTIONS]
    assert result["sections"] == keys
    seen = await stages(store, job.task_id)
    assert seen == ["collecting", *(f"rendering:{k}" for k in keys), "saving", "storing"]
    assert await exports.names() == [f"{job.task_id}.pdf"]
    assert await exports.size(f"{job.task_id}.pdf") == result["size"]
    assert not exports.scratch(f"{job.task_id}.pdf", 1).exists()


async def test_a_cancel_after_the_file_is_written_leaves_no_file(
    store: TaskStore, settings: Settings, exports: ExportStore, monkeypatch: pytest.MonkeyPatch
):
    job = await job_for(store, settings, exports)
    scratch = exports.scratch(f"{job.task_id}.md", 1)
    saved = asyncio.Event()
    real_to_thread = asyncio.to_thread

    async def held(fn: Any, *args: Any) -> Any:
        result = await real_to_thread(fn, *args)
        if getattr(fn, "__name__", "") == "save":  # the partial file is on disk now
            saved.set()
            await asyncio.Event().wait()
        return result

    monkeypatch.setattr("jobs.kinds.export.asyncio.to_thread", held)
    running = asyncio.create_task(
        export(job, Params.model_validate({"projectId": await saved_plan(store), "format": "md"}))
    )
    async with asyncio.timeout(20):
        await saved.wait()
        assert scratch.exists() and await exports.names() in ([], [scratch.name])
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert not scratch.exists() and await exports.names() == []


async def test_a_pdf_without_a_hangul_font_fails_with_font_missing(
    store: TaskStore, settings: Settings, tmp_path: Path
):
    settings = dataclasses.replace(settings, font_path=str(tmp_path / "no-such-font.ttf"))
    exports = Directory(tmp_path / "exports")
    job = await job_for(store, settings, exports)
    with pytest.raises(JobError) as raised:
        await export(
            job, Params.model_validate({"projectId": await saved_plan(store), "format": "pdf"})
        )
    assert raised.value.code == "FONT_MISSING" and "TASKSTREAM_FONT" in raised.value.message
    assert await exports.names() == []


async def test_a_project_whose_plan_is_gone_fails_plan_not_found(
    store: TaskStore, settings: Settings, tmp_path: Path
):
    job = await job_for(store, settings, Directory(tmp_path))
    with pytest.raises(JobError) as raised:
        await export(job, Params.model_validate({"projectId": str(uuid.uuid4()), "format": "md"}))
    assert raised.value.code == "PLAN_NOT_FOUND"
