"""The delivery contract, once, for every transport.

`follow()` yields one task's events in order, with no gap and no duplicate:

1. subscribe (the hub returns once Redis confirmed it);
2. then either a `status` snapshot (a new subscription), or the events after the client's
   last id read from the task's stream, or, when the stream no longer holds them all, a
   snapshot marked `resync`;
3. then live events, dropping every id not newer than the last one yielded; a listener
   that fell behind (queue overflow, Redis reconnect) catches up from the stream again.

It ends after the task's terminal event, or with a `reconnect` event (no id, so the
client's last id stays) when the process shuts down, or with a `reauthenticate` event
(no id either) when the caller's access token expires (`until`). `follow_many()` merges
several tasks into one stream whose ids are cursors: the last id of every task, in the
order they were asked for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass

from jobs.tasks import Event, TaskStore, parse_event_id
from server.realtime.hub import Hub

MULTI_QUEUE = 64
RECONNECT_MS = 1000
RECONNECT = Event("", "reconnect", f'{{"reason":"shutdown","retryMs":{RECONNECT_MS}}}')
REAUTHENTICATE = Event(
    "",
    "reauthenticate",
    '{"code":"TOKEN_EXPIRED","message":"the access token has expired: refresh it, then '
    'resume with the last event id"}',
)


class Cursor:
    """The newest event id yielded so far; filters out everything not newer."""

    def __init__(self, last_id: str | None) -> None:
        self.reset(last_id)

    def reset(self, last_id: str | None) -> None:
        self._key = parse_event_id(last_id)
        self.id = last_id if self._key is not None else None

    def admit(self, event: Event) -> bool:
        key = parse_event_id(event.id)
        if key is None or (self._key is not None and key <= self._key):
            return False
        self.id, self._key = event.id, key
        return True


@dataclass(frozen=True)
class Snapshot(Event):
    """A `status` event built from the task record; its id is the last event it includes."""

    final: bool = False


async def follow(
    hub: Hub,
    store: TaskStore,
    task_id: str,
    last_id: str | None = None,
    until: float | None = None,
) -> AsyncIterator[Event]:
    async with hub.listen(task_id) as listener:
        cursor = Cursor(last_id)
        if cursor.id is None:
            batch = await _snapshot(store, task_id)
        else:
            batch = await _catch_up(store, task_id, cursor)
        while True:
            for event in batch:
                if isinstance(event, Snapshot):
                    cursor.reset(event.id)
                elif not cursor.admit(event):
                    continue
                yield event
                if event.terminal or isinstance(event, Snapshot) and event.final:
                    return
            if listener.closing:
                yield RECONNECT
                return
            if until is None:
                await listener.wait()
            else:
                try:
                    async with asyncio.timeout(until - time.time()):
                        await listener.wait()
                except TimeoutError:
                    yield REAUTHENTICATE
                    return
            if listener.stale:
                listener.stale = False
                batch = await _catch_up(store, task_id, cursor)
            else:
                batch = list(listener.queue)
                listener.queue.clear()


async def _snapshot(store: TaskStore, task_id: str, resync: bool = False) -> list[Event]:
    task = await store.get(task_id, with_text=True)
    if task is None:
        return []
    event = task.as_event(resync=resync)
    return [Snapshot(event.id, event.type, event.data, final=task.terminal)]


async def _catch_up(store: TaskStore, task_id: str, cursor: Cursor) -> list[Event]:
    replay = await store.replay(task_id, cursor.id or "0-0")
    if replay is None:
        return []
    if replay.resync:
        return await _snapshot(store, task_id, resync=True)
    return replay.events


async def follow_many(
    hub: Hub,
    store: TaskStore,
    task_ids: list[str],
    cursor: list[str | None],
    until: float | None = None,
) -> AsyncIterator[Event]:
    """Events of several tasks on one stream; each event's id is the cursor of all tasks."""
    # bounded: a slow client holds the pumps back, and their listeners fall back to catch-up
    queue: asyncio.Queue[tuple[int, Event | Exception | None]] = asyncio.Queue(MULTI_QUEUE)

    async def pump(index: int) -> None:
        try:
            async for event in follow(hub, store, task_ids[index], cursor[index], until):
                await queue.put((index, event))
        except Exception as error:
            await queue.put((index, error))
            return
        await queue.put((index, None))  # this task ended

    pumps = [asyncio.create_task(pump(i)) for i in range(len(task_ids))]
    try:
        open_count = len(pumps)
        while open_count:
            index, event = await queue.get()
            if isinstance(event, Exception):
                raise event
            if event is None:
                open_count -= 1
                continue
            if event is RECONNECT or event is REAUTHENTICATE:
                yield event
                return
            cursor[index] = event.id
            yield Event(",".join(c or "" for c in cursor), event.type, event.data)
    finally:
        for p in pumps:
            p.cancel()
        for p in pumps:
            with suppress(asyncio.CancelledError):
                await p
