"""HTTP errors and the one table that turns them into the error envelope.

    ApiError                 400, any code
    ├── Unauthorized         401 (no, expired or revoked token; `WWW-Authenticate: Bearer`)
    ├── NotFound             404 (unknown task, malformed id, someone else's task)
    ├── Conflict             409 (the task's state forbids it)
    ├── PayloadTooLarge      413 (a body over TASKSTREAM_MAX_BODY_BYTES)
    ├── RangeNotSatisfiable  416 (a download's Range outside the file)
    ├── Unprocessable        422 (body is not JSON, or fails validation; `details` lists fields)
    └── TooManyRequests      429 (a rate limit; `Retry-After`)

Endpoints raise; `EXCEPTION_HANDLERS` answers `{"success": false, "error": {...}}`. A Redis
error that means the store is unreachable or not ready (`jobs.infra.connections.is_outage`) is
`503 REDIS_UNAVAILABLE` with a jittered `Retry-After`, never a 500: the clients retry.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

from redis.exceptions import RedisClusterException, RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jobs.infra.connections import is_outage
from jobs.start import Refused

logger = logging.getLogger(__name__)


class ApiError(Exception):
    status_code = 400
    code = "BAD_REQUEST"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.details = details
        self.headers = headers


class Unauthorized(ApiError):
    status_code = 401
    code = "UNAUTHORIZED"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"WWW-Authenticate": "Bearer"})


class NotFound(ApiError):
    status_code = 404
    code = "NOT_FOUND"


class Forbidden(ApiError):
    status_code = 403
    code = "FORBIDDEN"


class Conflict(ApiError):
    status_code = 409
    code = "CONFLICT"


class PayloadTooLarge(ApiError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"


class TooManyRequests(ApiError):
    status_code = 429
    code = "RATE_LIMITED"


class RangeNotSatisfiable(ApiError):
    status_code = 416
    code = "RANGE_NOT_SATISFIABLE"


class Unavailable(ApiError):
    status_code = 503
    code = "UNAVAILABLE"


class Unprocessable(ApiError):
    status_code = 422
    code = "VALIDATION_ERROR"

    @classmethod
    def field(cls, field: str, message: str, what: str = "the request body") -> Unprocessable:
        """422 naming one field, in the shape validation errors have."""
        return cls(f"{what} is invalid", details=[{"field": field, "message": message}])


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return JSONResponse(
        {"success": False, "error": error}, status_code=status_code, headers=headers
    )


def api_error_response(exc: ApiError) -> JSONResponse:
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return api_error_response(exc)


_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)  # a kind's start hook said no (`jobs/start.py`)
    return error_response(exc.status, exc.code, exc.message, exc.details)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error", extra={"path": request.url.path})
    return error_response(500, "INTERNAL_ERROR", "something went wrong on our side")


def retry_after(most: int) -> dict[str, str]:
    """Come back in 1 to `most` seconds (spread, so that a crowd of clients does not come
    back at once)."""
    return {"Retry-After": str(random.randint(1, most))}


def store_unavailable() -> JSONResponse:
    """503 while Redis is unreachable or not ready: come back in a second or three."""
    message = "the task store is not reachable; try again shortly"
    return error_response(503, "REDIS_UNAVAILABLE", message, headers=retry_after(3))


async def _store_error(request: Request, exc: Exception) -> Response:
    if not is_outage(exc):
        return await _unexpected(request, exc)
    logger.warning("Redis unreachable: %s", exc, extra={"path": request.url.path})
    return store_unavailable()


EXCEPTION_HANDLERS = {
    ApiError: _api_error,
    Refused: _refused,
    HTTPException: _http_error,
    RedisError: _store_error,
    RedisClusterException: _store_error,
    Exception: _unexpected,
}
