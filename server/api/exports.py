"""`/api/v1/exports/{exportId}/download`: an exported document (the `export` kind,
`jobs/kinds/export.py`, makes it).

The download is the stored file (`jobs/documents/store.py`, a directory or a bucket), read
and sent in chunks, with Content-Length, a UTF-8 `filename*`, `Range` (`server/ranges.py`)
and `If-Range`, and the content's SHA-256 as the ETag, so it is the same from every web
process. One range is served as 206; a request for several gets the whole file, as
RFC 9110 allows. A malformed Range is 400 and one outside the file 416, in the envelope.
Until the export has completed, the download is the result's 409, never part of a file.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from jobs.documents.files import export_name
from jobs.documents.store import StoreUnavailable
from jobs.kinds.export import KIND
from server.access import load_finished
from server.errors import ApiError, NotFound, Unavailable
from server.errors import RangeNotSatisfiable as RangeRefused
from server.ranges import BadRange, Unsatisfiable, byte_ranges
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
    ranges = _ranges(request.headers["range"], size) if wanted else []
    start, stop = ranges[0] if len(ranges) == 1 else (0, size)  # several: the whole file
    partial = (start, stop) != (0, size)
    headers = {
        "ETag": etag,
        "Cache-Control": "private, no-cache",
        "Accept-Ranges": "bytes",
        "Content-Length": str(stop - start),
        "Content-Disposition": _disposition(made["fileName"]),
    }
    if partial:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    status, media_type = (206 if partial else 200), made["contentType"]
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    return StreamingResponse(exports.read(name, start, stop), status, headers, media_type)


def _disposition(filename: str) -> str:
    """An attachment's name: the UTF-8 form (RFC 6266) when it is not plain ASCII."""
    quoted = quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'


def _ranges(header: str, size: int) -> list[tuple[int, int]]:
    """The ranges asked for; refused in the envelope when malformed or outside the file."""
    try:
        return byte_ranges(header, size)
    except BadRange as bad:
        raise ApiError(f"malformed Range header: {bad}", code="BAD_RANGE") from None
    except Unsatisfiable:
        raise RangeRefused(
            f"the range is outside the file ({size} bytes)",
            headers={"Content-Range": f"bytes */{size}"},
        ) from None


routes = [Route(BASE + "/{task_id}/download", download)]
