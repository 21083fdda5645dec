"""What the task record holds, as values: a task's status, its public snapshot, its
events, and what a read gives back. No I/O: the store (`tasks.py`) reads and writes them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypedDict


class Status(StrEnum):
    """Where a task is in its life: pending → processing → completed | failed | cancelled
    (a retry goes back to pending)."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


class TaskSnapshot(TypedDict, total=False):
    """The public state of a task, as the status endpoint and `status` events show it."""

    taskId: str
    kind: str
    status: str
    progress: int
    currentStage: str | None
    estimatedRemaining: float | None
    errorCode: str | None
    errorMessage: str | None
    attempt: int
    maxAttempts: int
    createdAt: str
    startedAt: str | None
    finishedAt: str | None
    estimatedTime: float | None
    version: int
    textLength: int | None
    resultUrl: str | None
    text: str
    resync: bool


@dataclass(frozen=True)
class Event:
    """One event of a task: its stream id, its type and its JSON data, already encoded."""

    id: str
    type: str
    data: str

    @classmethod
    def from_message(cls, message: bytes | str) -> Event:
        text = message.decode() if isinstance(message, bytes) else message
        event_id, event_type, data = text.split("\n", 2)
        return cls(event_id, event_type, data)

    @property
    def message(self) -> str:
        """As published on a channel (`write.lua` publishes the same form)."""
        return f"{self.id}\n{self.type}\n{self.data}"

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL


@dataclass(frozen=True)
class Task:
    """What the store knows of a task: its public snapshot and the fields kept private."""

    snapshot: TaskSnapshot
    owner: str
    last_event_id: str
    raw: str = ""  # the snapshot's JSON as `write.lua` wrote it (without `text`)

    @property
    def id(self) -> str:
        return self.snapshot["taskId"]

    @property
    def status(self) -> Status:
        return Status(self.snapshot["status"])

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def as_event(self, *, resync: bool = False) -> Event:
        """The snapshot as a `status` event carrying the id of the last event it includes:
        the JSON as written, with the text so far and `resync` added, not encoded again."""
        if not self.raw:
            data: dict[str, Any] = dict(self.snapshot)
            if resync:
                data["resync"] = True
            return Event(self.last_event_id, "status", compact_json(data))
        extra = ""
        if (text := self.snapshot.get("text")) is not None:
            extra += ',"text":' + json.dumps(text, ensure_ascii=False)
        if resync:
            extra += ',"resync":true'
        data_json = self.raw[:-1] + extra + "}" if extra else self.raw
        return Event(self.last_event_id, "status", data_json)


@dataclass(frozen=True)
class Replay:
    """The task and the events after a given id, or `resync` when some were trimmed."""

    task: Task
    events: list[Event]
    resync: bool


def compact_json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
