"""Export: the project's plan as PDF, DOCX and Markdown, downloaded whole and in ranges."""

from __future__ import annotations

import hashlib
import io
import uuid
from typing import Any
from urllib.parse import quote

import docx
import httpx
import pytest
from docx.oxml.ns import qn
from pypdf import PdfReader

from jobs.documents.office import DOCX_EAST_ASIAN_FONT
from jobs.documents.store import ExportStore, export_store
from jobs.infra.config import Settings
from jobs.kinds.export import sweep_exports
from jobs.record import keys
from jobs.record.tasks import TaskStore
from tests.server.conftest import ANSWERS
from tests.support import Proc, collect, wait_for_status

BASE = "/api/v1/exports"
SIMULATION = {
    "horizonMonths": 24,
    "paths": 200,
    "seed": 1,
    "revenue": {"initialUnits": 100, "unitPrice": 9000, "monthlyGrowth": 0.05},
    "costs": {"fixedMonthly": 1_500_000},
    "funding": {"initialCash": 10_000_000},
}


@pytest.fixture
def exports(settings: Settings) -> ExportStore:
    """Where the web and worker processes keep the files: the suite's directory."""
    return export_store(settings)


async def stored(exports: ExportStore, name: str) -> bytes:
    size = await exports.size(name)
    assert size is not None, name
    return b"".join([chunk async for chunk in exports.read(name, 0, size)])


async def finished(http: httpx.AsyncClient, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    task_id = response.json()["data"]["taskId"]
    await wait_for_status(http, task_id, {"completed"})
    data: dict[str, Any] = (await http.get(f"/api/v1/tasks/{task_id}/result")).json()["data"]
    return data


@pytest.fixture(scope="module")
async def project(web: Proc, worker: Proc, auth: dict[str, str]) -> str:
    """A project with a plan, an evaluation of it and a financial simulation."""
    async with httpx.AsyncClient(base_url=web.url, timeout=10, headers=auth) as client:
        return await project_with_everything(client)


async def project_with_everything(client: httpx.AsyncClient) -> str:
    project_id = str(uuid.uuid4())
    plan = await finished(
        client,
        await client.post(
            "/api/v1/business-plan/generate", json=ANSWERS | {"projectId": project_id}
        ),
    )
    await finished(
        client,
        await client.post("/api/v1/evaluations", json={"businessPlanId": plan["businessPlanId"]}),
    )
    await finished(
        client,
        await client.post(f"/api/v1/projects/{project_id}/financial/simulate", json=SIMULATION),
    )
    return project_id


async def exported(http: httpx.AsyncClient, project_id: str, **body: Any) -> dict[str, Any]:
    response = await http.post(f"/api/v1/projects/{project_id}/export", json=body)
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert data["exportId"] == data["taskId"]
    assert data["links"]["download"] == f"{BASE}/{data['taskId']}/download"
    events = await collect(http, f"/api/v1/tasks/{data['taskId']}/events")
    assert events[-1].data["status"] == "completed", events[-1]
    result: dict[str, Any] = (await http.get(f"{BASE}/{data['taskId']}/result")).json()["data"]
    return result


async def test_a_pdf_downloads_whole_with_its_headers_and_its_korean_text_extracts(
    client: httpx.AsyncClient, project: str, exports: ExportStore
):
    made = await exported(client, project, format="pdf")
    assert made["sections"][-2:] == ["evaluation", "financial"]
    response = await client.get(made["downloadUrl"])
    assert response.status_code == 200
    body = response.content
    kept = await stored(exports, f"{made['exportId']}.pdf")
    assert body == kept and hashlib.sha256(body).hexdigest() == made["sha256"]
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-length"] == str(len(body)) == str(made["size"])
    assert response.headers["etag"] == f'"{made["sha256"]}"'
    assert response.headers["accept-ranges"] == "bytes"
    name = "동네빵집 사업계획서.pdf"
    assert made["fileName"] == name
    assert response.headers["content-disposition"] == f"attachment; filename*=utf-8''{quote(name)}"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)
    squashed = "".join(text.split())
    for expected in ("동네빵집", "시장분석", "출근길직장인", "평가결과", "재무시뮬레이션"):
        assert expected in squashed, expected


async def test_ranges_give_exactly_those_bytes_and_if_range_resumes(
    client: httpx.AsyncClient, project: str
):
    made = await exported(client, project, format="pdf")
    whole = (await client.get(made["downloadUrl"])).content
    size = len(whole)
    part = await client.get(made["downloadUrl"], headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206 and part.content == whole[100:1124]
    assert part.headers["content-range"] == f"bytes 100-1123/{size}"
    tail = await client.get(made["downloadUrl"], headers={"Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == whole[-500:]
    # resuming after 1,000 bytes, if the file is still the same one
    etag = part.headers["etag"]
    resumed = await client.get(
        made["downloadUrl"], headers={"Range": "bytes=1000-", "If-Range": etag}
    )
    assert resumed.status_code == 206 and whole[:1000] + resumed.content == whole
    stale = await client.get(
        made["downloadUrl"], headers={"Range": "bytes=1000-", "If-Range": '"another"'}
    )
    assert stale.status_code == 200 and stale.content == whole
    # a stale If-Range: the whole file, even for a range this one could not satisfy
    past = {"Range": f"bytes={size + 10}-", "If-Range": '"another"'}
    stale_past = await client.get(made["downloadUrl"], headers=past)
    assert stale_past.status_code == 200 and stale_past.content == whole
    # ranges that touch are one; several apart get the whole file; HEAD says the same
    joined = await client.get(made["downloadUrl"], headers={"Range": "bytes=0-9, 10-19"})
    assert joined.status_code == 206 and joined.content == whole[:20]
    several = await client.get(made["downloadUrl"], headers={"Range": "bytes=0-9,-10"})
    assert several.status_code == 200 and several.content == whole
    head = await client.head(made["downloadUrl"], headers={"Range": "bytes=-500"})
    assert head.status_code == 206 and head.content == b""
    assert head.headers["content-length"] == "500"
    assert head.headers["content-range"] == f"bytes {size - 500}-{size - 1}/{size}"


@pytest.mark.parametrize(
    ("header", "status", "code"),
    [
        ("bytes=999999999-", 416, "RANGE_NOT_SATISFIABLE"),
        ("lines=1-2", 400, "BAD_RANGE"),
        ("bytes=20-10", 400, "BAD_RANGE"),
    ],
    ids=["past-the-end", "not-bytes", "backwards"],
)
async def test_a_bad_range_is_refused_in_the_envelope(
    client: httpx.AsyncClient, project: str, header: str, status: int, code: str
):
    made = await exported(client, project, format="md")
    response = await client.get(made["downloadUrl"], headers={"Range": header})
    assert response.status_code == status and response.json()["error"]["code"] == code
    if status == 416:
        assert response.headers["content-range"] == f"bytes */{made['size']}"


async def test_docx_holds_the_korean_text_with_an_east_asian_font(
    client: httpx.AsyncClient, project: str
):
    made = await exported(client, project, format="docx", sections=["market", "evaluation"])
    assert made["sections"] == ["market", "evaluation"]
    response = await client.get(made["downloadUrl"])
    document = docx.Document(io.BytesIO(response.content))
    text = "\n".join(p.text for p in document.paragraphs)
    assert "시장 분석" in text and "출근길 직장인" in text and "평가 결과" in text
    assert "문제 정의" not in text  # a section not asked for
    cells = [c.text for t in document.tables for row in t.rows for c in row.cells]
    assert "market" in cells and "기준" in cells
    normal = document.styles["Normal"].element.rPr
    assert normal.rFonts.get(qn("w:eastAsia")) == DOCX_EAST_ASIAN_FONT


async def test_markdown_is_utf8_text_with_every_part(client: httpx.AsyncClient, project: str):
    made = await exported(client, project, format="md", language="ko")
    response = await client.get(made["downloadUrl"])
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    text = response.content.decode("utf-8")
    assert text.startswith("# 동네빵집\n")
    assert "## 시장 분석" in text and "## 평가 결과" in text and "## 재무 시뮬레이션" in text
    assert "| 기준 | 점수 | 근거 |" in text


@pytest.mark.parametrize(
    ("status", "code"),
    [("pending", "TASK_NOT_FINISHED"), ("processing", "TASK_NOT_FINISHED"),
     ("failed", "TASK_FAILED"), ("cancelled", "TASK_CANCELLED")],
)  # fmt: skip
async def test_a_download_of_an_export_that_did_not_complete_is_a_409_never_bytes(
    client: httpx.AsyncClient, store: TaskStore, status: str, code: str
):
    task = await store.create("export")  # a record no worker runs: its state is the test's
    if status != "pending":
        await store.start(task.id, 1)
    if status == "failed":
        await store.fail(task.id, "BROKEN", "it broke", attempt=1)
    if status == "cancelled":
        await store.cancel(task.id)
    response = await client.get(f"{BASE}/{task.id}/download")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code


async def test_unknown_foreign_and_malformed_exports_are_not_found(
    client: httpx.AsyncClient, project: str
):
    simulation = (
        await client.post(f"/api/v1/projects/{project}/financial/simulate", json=SIMULATION)
    ).json()["data"]["taskId"]
    for export_id in (str(uuid.uuid4()), simulation, "../../etc/passwd", "x"):
        response = await client.get(f"{BASE}/{export_id}/download")
        assert response.status_code == 404, export_id
        assert response.json()["error"]["code"] in {"TASK_NOT_FOUND", "NOT_FOUND"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"format": "odt"}, 422, "VALIDATION_ERROR"),
        ({"format": "pdf", "sections": ["appendix"]}, 422, "VALIDATION_ERROR"),
        ({"format": "pdf", "sections": []}, 422, "VALIDATION_ERROR"),
        ({}, 422, "VALIDATION_ERROR"),
    ],
    ids=["unknown-format", "unknown-section", "no-sections", "no-format"],
)
async def test_bad_export_requests_are_refused(
    client: httpx.AsyncClient, project: str, body: dict[str, Any], status: int, code: str
):
    response = await client.post(f"/api/v1/projects/{project}/export", json=body)
    assert response.status_code == status and response.json()["error"]["code"] == code


async def test_a_project_without_a_plan_or_without_a_simulation_says_which(
    client: httpx.AsyncClient,
):
    bare = str(uuid.uuid4())
    response = await client.post(f"/api/v1/projects/{bare}/export", json={"format": "md"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "PROJECT_NOT_FOUND"
    simulated = await client.post(f"/api/v1/projects/{bare}/financial/simulate", json=SIMULATION)
    assert simulated.status_code == 202  # the project is now the caller's, with no plan yet
    response = await client.post(f"/api/v1/projects/{bare}/export", json={"format": "md"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "PLAN_NOT_FOUND"
    plan = await finished(
        client,
        await client.post("/api/v1/business-plan/generate", json=ANSWERS | {"projectId": bare}),
    )
    assert plan["projectId"] == bare
    asked = {"format": "md", "sections": ["market", "evaluation"]}
    response = await client.post(f"/api/v1/projects/{bare}/export", json=asked)
    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"sections": ["evaluation"]}


async def test_an_expired_exports_file_is_swept_and_its_download_is_gone(
    client: httpx.AsyncClient, project: str, store: TaskStore, exports: ExportStore
):
    made = await exported(client, project, format="md")
    kept = await exported(client, project, format="md")
    await store.records.delete(keys.task(made["exportId"]))  # as its expiry would
    assert await sweep_exports(store, exports) == [made["exportId"]]
    assert await exports.size(f"{made['exportId']}.md") is None
    assert (await client.get(kept["downloadUrl"])).status_code == 200
