"""What a language model does for a job, and the one that needs no network.

`Prompt` is what a job asks; `Model` is what answers (`gemini.py` makes the Gemini one);
`OfflineModel` answers from each prompt's own template, so that everything works with no
key. This module loads no model SDK: the job kinds import it, and the web process imports
the kinds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from jobs.errors import JobError

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

    async def aclose(self) -> None:
        """Close the connections to the model."""
        ...


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

    async def aclose(self) -> None:
        pass
