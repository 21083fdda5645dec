"""`/openapi.json` (OpenAPI 3.1) and `/docs`, a page that lists it.

Request bodies are the pydantic models the endpoints validate with, so the document
cannot drift from what is enforced; each operation lists the statuses it can answer,
every error in the envelope. Streams are described too (`text/event-stream`); the
WebSocket is in docs/api.md, as OpenAPI has no words for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jobs.kind import TASKS_PATH
from jobs.kinds import Kinds
from server.api.auth import (
    LoginRequest,
    LogoutRequest,
    NewPasswordRequest,
    RefreshRequest,
    ResetRequest,
    SignupRequest,
    TokenRequest,
)
from server.api.tasks import STATUSES
from server.state import app_state

REASONS = {
    200: "OK", 201: "Created", 202: "Accepted: the task is queued", 204: "Nothing more to send",
    206: "Part of the file", 304: "Not modified since the ETag", 400: "Bad request",
    401: "No, expired or revoked token", 404: "Not found (or another user's)",
    409: "The state forbids it", 413: "Body too large", 416: "Range outside the file",
    422: "Invalid body or query", 429: "A limit; see Retry-After", 503: "Unavailable; retry",
}  # fmt: skip


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


TASK_ID = _path_param("task_id")


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    tag: str
    ok: int = 200
    data: str = "Object"  # the success envelope's `data`, a schema in components
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    auth: bool = True
    params: tuple[dict[str, Any], ...] = ()
    more: dict[int, str] = field(default_factory=dict)  # other successes: status → media


def operations(kinds: Kinds) -> list[Op]:
    ops = [
        Op("post", "/api/v1/auth/signup", "Create an account; the verification mail is a task",
           "accounts", 201, body=SignupRequest, errors=(409, 429), auth=False),
        Op("post", "/api/v1/auth/login", "Sign in", "accounts", body=LoginRequest,
           errors=(401, 429), auth=False),
        Op("post", "/api/v1/auth/refresh", "Trade a refresh token for a new pair", "accounts",
           body=RefreshRequest, errors=(401,), auth=False),
        Op("post", "/api/v1/auth/logout", "End this session", "accounts", body=LogoutRequest),
        Op("get", "/api/v1/auth/me", "The signed-in user", "accounts"),
        Op("post", "/api/v1/auth/verify-email", "Confirm the address with the mailed token",
           "accounts", body=TokenRequest, errors=(400,), auth=False),
        Op("post", "/api/v1/auth/verify-email/resend", "Mail a new verification link",
           "accounts", 202, "Accepted", errors=(409, 429)),
        Op("post", "/api/v1/auth/password/reset-request", "Mail a reset link (same answer "
           "for every address)", "accounts", 202, "Accepted", ResetRequest, (429,), False),
        Op("post", "/api/v1/auth/password/reset", "Set a new password with the mailed token",
           "accounts", body=NewPasswordRequest, errors=(400,), auth=False),
        Op("post", "/api/v1/stream-tickets", "A single-use ticket for `?ticket=` on a stream",
           "streams", 201),
        Op("get", "/api/v1/tasks", "The caller's tasks, newest first", "tasks", params=(
            {"name": "status", "in": "query", "schema": {"type": "string"}},
            {"name": "kind", "in": "query", "schema": {"type": "string"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer"}},
            {"name": "offset", "in": "query", "schema": {"type": "integer"}},
        ), errors=(422,)),
        Op("get", "/api/v1/tasks/{task_id}/events", "One task's events (SSE)", "streams",
           errors=(404, 429, 503), params=(TASK_ID,), more={204: ""}),
        Op("get", "/api/v1/events", "Many tasks' events (SSE): `?tasks=a,b`, or all the "
           "caller's", "streams", errors=(400, 404, 429, 503), params=(
               {"name": "tasks", "in": "query", "schema": {"type": "string"}},)),
        Op("get", "/api/v1/business-plan/{plan_id}", "A stored business plan", "business_plan",
           errors=(404,), params=(_path_param("plan_id"),)),
        Op("get", "/api/v1/exports/{task_id}/download", "The exported file (Range supported)",
           "export", errors=(400, 404, 409, 416, 503), params=(TASK_ID,), more={206: ""}),
        Op("get", "/healthz", "Liveness", "operations", auth=False),
        Op("get", "/readyz", "Readiness (Redis answers)", "operations", errors=(503,), auth=False),
    ]  # fmt: skip
    # every kind's tasks under /api/v1/tasks and under the kind's own path; an ownerless
    # kind's task may have no owner, and is then its id's holder's
    bases = {TASKS_PATH: ("tasks", True)}
    for kind in kinds.values():
        bases.setdefault(kind.path, (kind.name, not kind.ownerless))
        if (start := kind.start) is not None:
            names = tuple(_path_param(name) for name in start.path_names)
            ops.append(Op("post", start.path, start.summary, kind.name, 202, "Accepted",
                          start.body, start.errors, params=names))  # fmt: skip
    for base, (tag, auth) in bases.items():
        ops += [
            Op("get", base + "/{task_id}/status", "The task (ETag; 304 when unchanged)", tag,
               data="Task", errors=(404,), params=(TASK_ID,), more={304: ""}, auth=auth),
            Op("get", base + "/{task_id}/result", "The task's result, once completed", tag,
               errors=(404, 409), params=(TASK_ID,), auth=auth),
            Op("post", base + "/{task_id}/cancel", "Cancel the task", tag, data="Task",
               errors=(404, 409), params=(TASK_ID,), auth=auth),
        ]  # fmt: skip
    return ops


def document(kinds: Kinds) -> dict[str, Any]:
    ops = operations(kinds)
    models = list(dict.fromkeys(op.body for op in ops if op.body is not None))
    refs, defs = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = {**defs["$defs"], **ENVELOPES}
    properties: dict[str, Any] = {**TASK["properties"], "kind": {"enum": list(kinds)}}  # type: ignore[dict-item]
    schemas["Task"] = {**TASK, "properties": properties}
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        body = None if op.body is None else refs[(op.body, "validation")]
        paths.setdefault(op.path, {})[op.method] = _operation(op, body)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Taskstream",
            "version": "1",
            "description": "Async work for a business-plan service, streamed to the browser.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(op: Op, body: dict[str, Any] | None) -> dict[str, Any]:
    streams = op.path.endswith("events")
    success: dict[str, Any]
    if streams:
        success = {"text/event-stream": {"schema": {"type": "string"}}}
    elif op.path.endswith("download"):
        success = {"application/octet-stream": {"schema": {"type": "string"}}}
    else:
        success = _json({"$ref": f"#/components/schemas/{op.data}Envelope"})
    errors = set(op.errors) | ({401} if op.auth else set())
    if op.body is not None:
        errors |= {413, 422}
    responses: dict[str, Any] = {str(op.ok): {"description": REASONS[op.ok], "content": success}}
    for status, media in op.more.items():
        responses[str(status)] = {"description": REASONS[status]}
        if media:
            responses[str(status)]["content"] = {media: {"schema": {"type": "string"}}}
    for status in sorted(errors):
        error = _json({"$ref": "#/components/schemas/ErrorEnvelope"})
        responses[str(status)] = {"description": REASONS[status], "content": error}
    operation: dict[str, Any] = {
        "summary": op.summary,
        "tags": [op.tag],
        "operationId": f"{op.method}_{op.path}".replace("/", "_").replace("{", "").replace("}", ""),
        "parameters": list(op.params),
        "responses": responses,
    }
    if body is not None:  # the model's schema, named apart from others of the same name
        operation["requestBody"] = {"required": True, "content": _json(body)}
    operation["security"] = [{"bearer": []}] if op.auth else []
    return operation


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["success", "data"],
        "properties": {"success": {"const": True}, "data": data},
    }


TASK = {
    "type": "object",
    "required": ["taskId", "kind", "status", "progress", "version"],
    "properties": {
        "taskId": {"type": "string"},
        "kind": {"type": "string"},
        "status": {"enum": list(STATUSES)},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "currentStage": {"type": ["string", "null"]},
        "estimatedRemaining": {"type": ["number", "null"]},
        "errorCode": {"type": ["string", "null"]},
        "errorMessage": {"type": ["string", "null"]},
        "attempt": {"type": "integer"},
        "version": {"type": "integer"},
    },
}
ENVELOPES: dict[str, Any] = {
    "Task": TASK,
    "TaskEnvelope": _envelope({"$ref": "#/components/schemas/Task"}),
    "ObjectEnvelope": _envelope({"type": "object"}),
    "AcceptedEnvelope": _envelope(
        {
            "type": "object",
            "required": ["taskId", "status", "links"],
            "properties": {
                "taskId": {"type": "string"},
                "status": {"enum": list(STATUSES)},
                "links": {"type": "object", "required": ["status"]},
            },
        }
    ),  # fmt: skip
    "ErrorEnvelope": {
        "type": "object",
        "required": ["success", "error"],
        "properties": {
            "success": {"const": False},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


async def openapi(request: Request) -> Response:
    return JSONResponse(document(app_state(request)["kinds"]))


routes = [Route("/openapi.json", openapi)]
