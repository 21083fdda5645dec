"""The progress reporter a job function writes through.

Bursts are coalesced: at most one event per `interval` per task, the newest values win and
are always delivered (a timer flushes what is pending), partial text is concatenated, never
dropped. Progress never decreases. Writes are fenced by the attempt, so a job whose task
was cancelled or taken over learns it at its next report (`TaskGone`); so does a job whose
delayed write failed (Redis unreachable): that error is raised at its next report.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from jobs.errors import TaskGone
from jobs.record.tasks import TaskStore, WriteRejected


class Progress:
    def __init__(self, store: TaskStore, task_id: str, attempt: int, interval: float) -> None:
        self.store = store
        self.task_id = task_id
        self.attempt = attempt
        self.interval = interval
        self.progress = 0
        self._pending: dict[str, Any] = {}
        self._text: list[str] = []
        self._last_write = 0.0
        self._timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._gone = False
        self._failed: Exception | None = None  # a delayed write's error, for the job
        self._stopped = False

    async def update(
        self,
        progress: int | None = None,
        stage: str | None = None,
        estimated_remaining: float | None = None,
    ) -> None:
        """Report progress (0–100), the current stage and the seconds left, when known."""
        if progress is not None:
            self.progress = max(self.progress, min(100, int(progress)))
            self._pending["progress"] = self.progress
        if stage is not None:
            self._pending["currentStage"] = stage
        if estimated_remaining is not None:
            self._pending["estimatedRemaining"] = round(max(0.0, estimated_remaining), 1)
        await self._submit()

    async def partial(self, text: str) -> None:
        """Report a chunk of generated text."""
        if text:
            self._text.append(text)
            await self._submit()

    async def stop(self) -> None:
        """The attempt is over without finishing: what is pending is dropped, and nothing is
        written after this (a coalesced update must not land after the attempt's retry or
        failure, where it would show the failed attempt's progress under `retrying`)."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        async with self._lock:  # a write already under way lands first
            self._pending.clear()
            self._text.clear()

    async def flush(self) -> None:
        """Write whatever is pending now (before a terminal event)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._write()
        self._raise_if_gone()

    async def _submit(self) -> None:
        self._raise_if_gone()
        wait = self._last_write + self.interval - time.monotonic()
        if wait <= 0 and self._timer is None:
            await self._write()
            self._raise_if_gone()
        elif self._timer is None:
            self._timer = asyncio.create_task(self._write_later(max(wait, 0)))

    async def _write_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._timer = None
        try:
            await self._write()
        except Exception as error:  # no one awaits this task: the job's next report
            self._failed = error

    async def _write(self) -> None:
        async with self._lock:
            if self._stopped or (not self._pending and not self._text):
                return
            patch, self._pending = self._pending, {}
            text, self._text = "".join(self._text), []
            self._last_write = time.monotonic()
            try:
                await self.store.progress(self.task_id, self.attempt, patch, text)
            except WriteRejected:
                self._gone = True

    def _raise_if_gone(self) -> None:
        if self._gone:
            raise TaskGone(self.task_id)
        if self._failed is not None:
            raise self._failed
