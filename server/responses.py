"""The success envelope and request-body parsing, shared by every endpoint."""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from jobs.record.ids import is_digits
from server.errors import PayloadTooLarge, Unprocessable
from server.state import app_state

Model = TypeVar("Model", bound=BaseModel)


def ok(data: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"success": True, "data": data}, status_code=status_code, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if is_digits(declared) and int(declared) > limit:
        raise PayloadTooLarge(f"the body may not exceed {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body may not exceed {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


MAX_JSON_DEPTH = 20
MAX_NUMBER_CHARS = 40  # a float's repr is at most 24; an int of 40 digits is beyond any use


def read_json(raw: bytes | str) -> Any:
    """JSON from a client, within bounds: nested at most `MAX_JSON_DEPTH` deep, finite
    numbers of at most `MAX_NUMBER_CHARS` characters (no NaN/Infinity); else 422
    `INVALID_JSON`. Unbounded, Python's parser fails deep nesting and long integers with
    errors that are not a bad request's."""
    try:
        value = json.loads(raw, parse_int=_number, parse_float=_number, parse_constant=_constant)
    except RecursionError:
        value = None  # deeper than Python's parser goes: deeper than we allow, too
        depth = MAX_JSON_DEPTH + 1
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise Unprocessable(f"not valid JSON: {exc}", code="INVALID_JSON") from None
    else:
        depth = _depth(value)
    if depth > MAX_JSON_DEPTH:
        raise Unprocessable(
            f"JSON may nest at most {MAX_JSON_DEPTH} levels deep", code="INVALID_JSON"
        )
    return value


def _number(text: str) -> int | float:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number longer than {MAX_NUMBER_CHARS} characters")
    number = float(text) if any(c in text for c in ".eE") else int(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


def _constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in node)
    return deepest


async def parse_body(request: Request, model: type[Model]) -> Model:
    """The request's JSON body validated as `model`; an empty body counts as `{}`."""
    raw = await read_body(request, app_state(request)["settings"].max_body_bytes)
    payload = read_json(raw) if raw.strip() else {}
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        raise Unprocessable("the request body is invalid", details=details) from None
