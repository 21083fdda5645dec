"""`/api/v1/projects/{projectId}/export` and `/api/v1/exports/{exportId}/…`: documents.

The download is the file on disk, streamed in chunks by Starlette's `FileResponse`
(Content-Length, a UTF-8 `filename*`, `Range` and `If-Range`), with the content's SHA-256
as its ETag, so it is the same from every web process. A Range outside the file is
refused here, in the envelope, before FileResponse would answer in plain text. Until the
export has completed, the download is the result's 409, never part of a file.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable, Response
from starlette.routing import Route

from jobs.export_files import EXTRA_PARTS, export_path
from jobs.kinds.export import KIND, Params
from jobs.kinds.export import Choice as ExportRequest
from server.access import load_finished, owned_project
from server.auth import authenticate
from server.errors import ApiError, Conflict, NotFound
from server.errors import RangeNotSatisfiable as RangeRefused
from server.responses import parse_body
from server.state import app_state
from server.submit import accepted, submit

BASE = KIND.path


async def start(request: Request) -> Response:
    await authenticate(request)
    body = await parse_body(request, ExportRequest)
    project = await owned_project(request, request.path_params["project_id"], claim=False)
    plans = app_state(request)["plans"]
    plan = await plans.latest(project)
    if plan is None:
        raise NotFound("the project has no business plan to export", code="PLAN_NOT_FOUND")
    available = {
        "evaluation": await plans.latest_evaluation(plan["businessPlanId"]) is not None,
        "financial": await plans.latest_simulation(project) is not None,
    }
    missing = [key for key in body.sections or () if key in EXTRA_PARTS and not available[key]]
    if missing:
        raise Conflict(
            f"the project has no {' or '.join(missing)} to export yet",
            code="SECTION_UNAVAILABLE",
            details={"sections": missing},
        )
    params = Params(projectId=project, **body.model_dump())
    task = await submit(request, body, KIND.name, params, estimated_time=3)
    download = {"download": f"{BASE}/{task.id}/download"}
    return accepted(task, BASE, extra_links=download, exportId=task.id)


async def download(request: Request) -> Response:
    task = await load_finished(request, kind=KIND.name, task_id=request.path_params["task_id"])
    state = app_state(request)
    made = await state["store"].result(task.id)
    path = export_path(state["settings"].export_dir, task.id, made["format"])
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise NotFound("the exported file is gone; export again", code="EXPORT_GONE") from None
    if "range" in request.headers:
        check_range(request.headers["range"], size)
    return FileResponse(
        path,
        media_type=made["contentType"],
        filename=made["fileName"],
        headers={"ETag": f'"{made["sha256"]}"', "Cache-Control": "private, no-cache"},
    )


def check_range(header: str, size: int) -> None:
    # FileResponse's own parser, so that what we accept is what it serves
    try:
        FileResponse._parse_range_header(header, size)
    except MalformedRangeHeader as exc:
        raise ApiError(f"malformed Range header: {exc.content}", code="BAD_RANGE") from None
    except RangeNotSatisfiable:
        raise RangeRefused(
            f"the range is outside the file ({size} bytes)",
            headers={"Content-Range": f"bytes */{size}"},
        ) from None


routes = [
    Route("/api/v1/projects/{project_id}/export", start, methods=["POST"]),
    Route(BASE + "/{task_id}/download", download),
]
