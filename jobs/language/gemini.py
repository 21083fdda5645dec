"""The language model behind generation and evaluation.

`GeminiModel` talks to Gemini through the `google-genai` SDK (async client, streaming for
text, JSON with a schema for structured answers). The SDK's own retries are off: a
transient failure surfaces as `TransientError`, and the task lifecycle retries it with
backoff, so the user sees the attempt. 429 and 5xx are transient; so are the transport's
failures, each with its own code: no connection (`UPSTREAM_UNREACHABLE`), no answer in
time (`UPSTREAM_TIMEOUT`), a connection broken mid-answer (`UPSTREAM_DISCONNECTED`), a
stream that ends without a finish reason (`UPSTREAM_INCOMPLETE`). Any other 4xx fails
the task (`UPSTREAM_REJECTED`); output that is not the JSON asked for fails it too
(`MALFORMED_MODEL_OUTPUT`).

Deliberately, no HTTP library is imported here: the SDK chooses its own (httpx, then
its fork httpx2 in google-genai 3), so a transport error is recognised by the API that
family shares (`TransportError`, `TimeoutException`, `ConnectError`) on the module that
raised it. An error of any other kind is not guessed at: it fails the task as a bug.

With no `GEMINI_API_KEY`, `model_from` gives `OfflineModel` (`jobs/language/model.py`), which
writes from templates through the same interface; its results say `offline`.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from jobs.errors import JobError, TransientError
from jobs.infra.config import GeminiSettings
from jobs.language.model import Model, OfflineModel, Prompt, Schema, parse_json


def model_from(settings: GeminiSettings) -> Model:
    return GeminiModel(settings) if settings.api_key else OfflineModel()


def upstream_error(error: Exception, timeout_s: float) -> JobError | None:
    """What a failure raised by the SDK means for the task; None if it is not the SDK's."""
    if isinstance(error, genai_errors.APIError):
        detail = f"the AI model answered {error.code}: {error.message or error.status}"
        if error.code == 429:
            return TransientError(detail, code="RATE_LIMITED")
        if error.code >= 500:
            return TransientError(detail)
        return JobError(detail, code="UPSTREAM_REJECTED")
    return _transport_error(error, timeout_s)


def _transport_error(error: Exception, timeout_s: float) -> TransientError | None:
    """An error of the SDK's HTTP library: httpx or a fork that keeps its exception API."""
    library: Any = sys.modules.get(type(error).__module__.partition(".")[0])
    base = getattr(library, "TransportError", None)
    if not isinstance(base, type) or not isinstance(error, base):
        return None
    if isinstance(error, (library.ConnectError, library.ConnectTimeout)):
        return TransientError(
            "the AI model could not be reached; try again in a few minutes",
            code="UPSTREAM_UNREACHABLE",
        )
    if isinstance(error, library.TimeoutException):
        return TransientError(
            f"the AI model did not answer within {timeout_s:g} s; try again later",
            code="UPSTREAM_TIMEOUT",
        )
    return TransientError(
        f"the connection to the AI model broke off mid-answer ({type(error).__name__})",
        code="UPSTREAM_DISCONNECTED",
    )


INCOMPLETE = "the AI model's answer stopped before it was finished; try again"


class GeminiModel:
    offline = False

    def __init__(self, settings: GeminiSettings) -> None:
        self.name = settings.model
        self.timeout_s = settings.timeout_s
        self.limit = types.GenerateContentConfig(max_output_tokens=settings.max_output_tokens)
        self._options = types.HttpOptions(
            base_url=settings.base_url,
            timeout=int(settings.timeout_s * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        self._api_key = settings.api_key
        self._client = self._new_client()

    def _new_client(self) -> genai.Client:
        return genai.Client(api_key=self._api_key, http_options=self._options)

    async def stream_text(self, prompt: Prompt) -> AsyncGenerator[str, None]:
        """The generated text, as it comes. A client (and so a connection) of its own,
        closed however the generation ends: a cancelled task stops the model at once.
        Closing only the SDK's stream reaches its outermost generator; the response is held
        by nested ones that close when collected — under load the upstream request stayed
        open for more than 10 s after a cancel, even with a collection forced."""
        finished = False
        client = self._new_client()
        try:
            with self._upstream():
                stream = await client.aio.models.generate_content_stream(
                    model=self.name, contents=prompt.text, config=self.limit
                )
                async for chunk in stream:
                    finished = finished or any(c.finish_reason for c in chunk.candidates or ())
                    if chunk.text:
                        yield chunk.text
        finally:
            await client.aio.aclose()
        if not finished:
            raise TransientError(INCOMPLETE, code="UPSTREAM_INCOMPLETE")

    async def json(self, prompt: Prompt, schema: type[Schema]) -> Schema:
        config = self.limit.model_copy(
            update={"response_mime_type": "application/json", "response_schema": schema}
        )
        with self._upstream():
            response = await self._client.aio.models.generate_content(
                model=self.name, contents=prompt.text, config=config
            )
        return parse_json(response.text or "", schema)

    async def aclose(self) -> None:
        await self._client.aio.aclose()

    @contextmanager
    def _upstream(self) -> Iterator[None]:
        """Raise the SDK's failures as what they mean for the task."""
        try:
            yield
        except Exception as error:
            if (meaning := upstream_error(error, self.timeout_s)) is None:
                raise
            raise meaning from error
