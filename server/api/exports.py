"""`/api/v1/projects/{projectId}/export` and `/api/v1/exports/{exportId}/…`: documents.

The download is the stored file (`jobs/export_store.py`), streamed in chunks: a directory's
by Starlette's `FileResponse`, a bucket's by `_object_response`, both with Content-Length, a
UTF-8 `filename*`, `Range` and `If-Range`, and the content's SHA-256 as the ETag, so it is
the same from every web process. (A bucket's download serves one range; a request for
several gets the whole file, as RFC 9110 allows.) A Range outside the file is refused here,
in the envelope, before FileResponse would answer in plain text. Until the export has
completed, the download is the result's 409, never part of a file.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    MalformedRangeHeader,
    RangeNotSatisfiable,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from jobs.export_files import export_name
from jobs.export_store import ExportStore, StoreUnavailable
from jobs.kinds.export import KIND
from server.access import load_finished
from server.errors import ApiError, NotFound, Unavailable
from server.errors import RangeNotSatisfiable as RangeRefused
from server.state import app_state

BASE = KIND.path
logger = logging.getLogger(__name__)


async def download(request: Request) -> Response:
    task = await load_finished(request, kind=KIND.name, task_id=request.path_params["task_id"])
    state = app_state(request)
    made = await state["store"].result(task.id)
    exports, name = state["exports"], export_name(task.id, made["format"])
    try:
        size = await exports.size(name)
    except StoreUnavailable as error:
        logger.error("export store unavailable: %s", error, extra={"taskId": task.id})
        raise Unavailable(
            "the exported files cannot be reached just now; try again shortly",
            code="EXPORT_STORE_UNAVAILABLE",
            headers={"Retry-After": "5"},
        ) from None
    if size is None:
        raise NotFound("the exported file is gone; export again", code="EXPORT_GONE")
    etag = f'"{made["sha256"]}"'
    # a Range counts only with no If-Range or a matching one: else the whole file, even
    # for a range the file could not satisfy (RFC 9110 13.1.5)
    wanted = "range" in request.headers and request.headers.get("if-range", etag) == etag
    ranges = check_range(request.headers["range"], size) if wanted else []
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    path = exports.path(name)
    if path is not None:
        return FileResponse(
            path, media_type=made["contentType"], filename=made["fileName"], headers=headers
        )
    if len(ranges) != 1:
        ranges = [(0, size)]  # none asked for, or several
    return _object_response(request, exports, name, size, ranges[0], made, headers)


def _object_response(
    request: Request,
    exports: ExportStore,
    name: str,
    size: int,
    span: tuple[int, int],
    made: dict[str, str],
    headers: dict[str, str],
) -> Response:
    """A bucket's object, or the part of it asked for, passed on as it is read."""
    start, stop = span
    partial = (start, stop) != (0, size)
    headers |= {
        "Accept-Ranges": "bytes",
        "Content-Length": str(stop - start),
        "Content-Disposition": _disposition(made["fileName"]),
    }
    if partial:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    status = 206 if partial else 200
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=made["contentType"])
    body = exports.read(name, start, stop)
    return StreamingResponse(body, status, headers, media_type=made["contentType"])


def _disposition(filename: str) -> str:
    """As `FileResponse` says it: the UTF-8 form when the name is not plain ASCII."""
    quoted = quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'


def check_range(header: str, size: int) -> list[tuple[int, int]]:
    """The ranges asked for ([start, stop)); refused in the envelope when malformed or
    outside the file. FileResponse's own parser: what we accept is what it serves."""
    try:
        return FileResponse._parse_range_header(header, size)
    except MalformedRangeHeader as exc:
        raise ApiError(f"malformed Range header: {exc.content}", code="BAD_RANGE") from None
    except RangeNotSatisfiable:
        raise RangeRefused(
            f"the range is outside the file ({size} bytes)",
            headers={"Content-Range": f"bytes */{size}"},
        ) from None


routes = [
    Route(BASE + "/{task_id}/download", download),
]
