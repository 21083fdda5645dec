"""The language model behind generation and evaluation.

`GeminiModel` talks to Gemini through the `google-genai` SDK (async client, streaming for
text, JSON with a schema for structured answers). The SDK's own retries are off: a
transient failure surfaces as `TransientError`, and the task lifecycle retries it with
backoff, so the user sees the attempt. 429 and 5xx are transient, so are timeouts and
dropped connections; any other 4xx fails the task (`UPSTREAM_REJECTED`); output that is
not the JSON asked for fails it too (`MALFORMED_MODEL_OUTPUT`).

`OfflineModel` writes from templates when no `GEMINI_API_KEY` is set, through the same
interface, so `taskstream up` works with no key; its results say `offline`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import BaseModel, ValidationError

from jobs.config import GeminiSettings
from jobs.errors import JobError, TransientError

Schema = TypeVar("Schema", bound=BaseModel)


@dataclass(frozen=True)
class Prompt:
    """What the model is asked, and what the offline model answers instead."""

    text: str
    offline: Callable[[], Any]


class Model(Protocol):
    name: str
    offline: bool

    def stream_text(self, prompt: Prompt) -> AsyncGenerator[str, None]:
        """The answer to `prompt`, chunk by chunk."""
        ...

    async def json(self, prompt: Prompt, schema: type[Schema]) -> Schema:
        """The answer to `prompt` as JSON validated by `schema`."""
        ...


def model_from(settings: GeminiSettings) -> Model:
    return GeminiModel(settings) if settings.api_key else OfflineModel()


def _upstream_error(error: Exception) -> JobError:
    if isinstance(error, genai_errors.APIError):
        detail = f"the model answered {error.code}: {error.message or error.status}"
        if error.code == 429:
            return TransientError(detail, code="RATE_LIMITED")
        if error.code >= 500:
            return TransientError(detail)
        return JobError(detail, code="UPSTREAM_REJECTED")
    if isinstance(error, httpx.TimeoutException):
        return TransientError("the model did not answer in time", code="UPSTREAM_TIMEOUT")
    return TransientError(f"could not reach the model: {error}")


_UPSTREAM = (genai_errors.APIError, httpx.HTTPError, OSError)


class GeminiModel:
    offline = False

    def __init__(self, settings: GeminiSettings) -> None:
        self.name = settings.model
        options = types.HttpOptions(
            base_url=settings.base_url,
            timeout=int(settings.timeout_s * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        self._client = genai.Client(api_key=settings.api_key, http_options=options)

    async def stream_text(self, prompt: Prompt) -> AsyncGenerator[str, None]:
        try:
            stream = await self._client.aio.models.generate_content_stream(
                model=self.name, contents=prompt.text
            )
            async for chunk in stream:
                if chunk.text:
                    yield chunk.text
        except _UPSTREAM as error:
            raise _upstream_error(error) from error

    async def json(self, prompt: Prompt, schema: type[Schema]) -> Schema:
        config = types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=schema
        )
        try:
            response = await self._client.aio.models.generate_content(
                model=self.name, contents=prompt.text, config=config
            )
        except _UPSTREAM as error:
            raise _upstream_error(error) from error
        return parse_json(response.text or "", schema)


def parse_json(text: str, schema: type[Schema]) -> Schema:
    try:
        return schema.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as error:
        raise JobError(
            f"the model's answer is not the JSON asked for: {str(error)[:200]}",
            code="MALFORMED_MODEL_OUTPUT",
        ) from error


class OfflineModel:
    """Answers with each prompt's offline template, at a readable pace; no network."""

    offline = True
    name = "offline-templates"

    def __init__(self, chunk_delay_s: float = 0.05, chunk_chars: int = 16) -> None:
        self.chunk_delay_s = chunk_delay_s
        self.chunk_chars = chunk_chars

    async def stream_text(self, prompt: Prompt) -> AsyncGenerator[str, None]:
        text: str = prompt.offline()
        for start in range(0, len(text), self.chunk_chars):
            await asyncio.sleep(self.chunk_delay_s)
            yield text[start : start + self.chunk_chars]

    async def json(self, prompt: Prompt, schema: type[Schema]) -> Schema:
        return schema.model_validate(prompt.offline())
