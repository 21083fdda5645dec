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
(no id either) when the caller's access token expires, or with `revoked` (no id) the
moment the caller's login is revoked (`watch`: `sessions.py`). `follow_many()` merges
several tasks into one stream whose ids are cursors: the last id of every task, in the
order they were asked for; `follow_all()`, every task of a user's, new ones included.

`open_stream()` is how SSE and the WebSocket open one task's stream: steps 1 and 2 done
before the answer starts, with the owner checked, so that a refusal is still an answer.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import AsyncIterator, Awaitable
from contextlib import suppress
from dataclasses import dataclass
from typing import TypeVar

from jobs.record.ids import is_digits, is_task_id, parse_event_id
from jobs.record.tasks import TaskStore
from jobs.record.values import Event, Replay, Task
from server.realtime.hub import Hub, Listener
from server.realtime.sessions import Watch

T = TypeVar("T")
MULTI_QUEUE = 64
RECONNECT_MS = 1000
FINISHED = Event("", "finished", "{}")  # internal: a followed task has ended
NEWS = Event("", "news", "{}")  # internal: the user has a new task
RECONNECT = Event("", "reconnect", f'{{"reason":"shutdown","retryMs":{RECONNECT_MS}}}')
REAUTHENTICATE = Event(
    "",
    "reauthenticate",
    '{"code":"TOKEN_EXPIRED","message":"the access token has expired: refresh it, then '
    'resume with the last event id"}',
)
REVOKED = Event(
    "", "revoked", '{"code":"TOKEN_REVOKED","message":"the session has ended; sign in again"}'
)
ENDINGS = (RECONNECT, REAUTHENTICATE, REVOKED)  # a stream's last event, when not the task's


def has_seen_end(task: Task, last_id: str | None) -> bool:
    """The client's last id already covers this finished task's terminal event."""
    seen, last = parse_event_id(last_id), parse_event_id(task.last_event_id)
    return task.terminal and seen is not None and last is not None and seen >= last


def parse_cursor(value: str | None, count: int) -> list[str | None]:
    """A multi-task cursor: one last id per task, comma-separated, in the `tasks` order."""
    parts = (value or "").split(",")
    if len(parts) != count:
        return [None] * count
    return [p if parse_event_id(p) else None for p in parts]


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


def first_batch(opening: Replay, last_id: str | None) -> list[Event] | None:
    """What a stream sends from `TaskStore.replay`: the snapshot, or the events after the
    client's last id; None when there are none and never will be."""
    task = opening.task
    if parse_event_id(last_id) is None or opening.resync:
        event = task.as_event(resync=opening.resync)
        return [Snapshot(event.id, event.type, event.data, final=task.terminal)]
    if not opening.events and task.terminal:
        return None
    return opening.events


class NoSuchTask(Exception):
    """An unknown or malformed id, or another user's task: all answered alike."""


@dataclass(frozen=True)
class Opened:
    """A stream's start: the task's channel subscribed, then its first batch read. It
    holds the listener until `close()` (`follow` closes it when it ends; a caller that
    drops it unfollowed closes it; a second close does nothing)."""

    hub: Hub
    listener: Listener
    batch: list[Event]

    def close(self) -> None:
        self.hub.release(self.listener)


async def open_stream(
    hub: Hub,
    store: TaskStore,
    task_id: str,
    owner: str,
    last_id: str | None,
    guard: str | None = None,
) -> Opened | None:
    """Subscribe to the task's channel, then read the task and its first batch in one
    round trip (refused, `ReadRefused`, when the key `guard` exists: a login's revocation
    mark), so that no event falls between. `NoSuchTask` unless the task is `owner`'s;
    None when the client has had the task's end already: nothing to follow."""
    # never a channel for a made-up id (its read still tells a refused guard)
    listener = await hub.subscribe(task_id) if is_task_id(task_id) else None
    try:
        opening = await store.replay(task_id, last_id, guard)
        if listener is None or opening is None or opening.task.owner != owner:
            raise NoSuchTask(task_id)
        batch = first_batch(opening, last_id)
    except BaseException:
        if listener is not None:
            hub.release(listener)
        raise
    if batch is None or has_seen_end(opening.task, last_id):
        hub.release(listener)
        return None
    return Opened(hub, listener, batch)


async def follow(
    hub: Hub,
    store: TaskStore,
    task_id: str,
    last_id: str | None = None,
    watch: Watch | None = None,
    opened: Opened | None = None,
) -> AsyncIterator[Event]:
    """The task's events for one stream, after `last_id`. `opened`: the stream's start is
    done already (`open_stream`)."""
    if opened is None:
        listener, batch = await hub.subscribe(task_id), None
    else:
        listener, batch = opened.listener, opened.batch
    try:
        cursor = Cursor(last_id)
        if batch is None:
            batch = await _read_after(store, task_id, cursor.id)
            if batch is None:
                return  # the client has had the task's terminal event already
        while True:
            if watch is not None and watch.ended:  # nothing more once the login has ended
                yield _ending(watch)
                return
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
            try:
                await _before(watch, listener.wait())
            except TimeoutError:
                yield _ending(watch)
                return
            if listener.stale:
                listener.stale = False
                batch = await _read_after(store, task_id, cursor.id or "0-0") or []
            else:
                batch, listener.queue = listener.queue, []
    finally:
        hub.release(listener)


async def _read_after(store: TaskStore, task_id: str, last_id: str | None) -> list[Event] | None:
    """From the record: the snapshot (no `last_id`, or events trimmed since) or the events
    after `last_id`; [] for a task that is gone, None when nothing more will come."""
    replay = await store.replay(task_id, last_id)
    return [] if replay is None else first_batch(replay, last_id)


class Merge:
    """Several tasks followed at once, their events through one bounded queue: a slow
    client holds the pumps back, and their listeners fall back to catching up from the
    streams."""

    def __init__(self, hub: Hub, store: TaskStore, watch: Watch | None) -> None:
        self.hub, self.store, self.watch = hub, store, watch
        self.queue: asyncio.Queue[tuple[str, Event | Exception]] = asyncio.Queue(MULTI_QUEUE)
        self.pumps: dict[str, asyncio.Task[None]] = {}

    def follow(self, task_id: str, last_id: str | None) -> None:
        self.pumps[task_id] = asyncio.create_task(self._pump(task_id, last_id))

    async def _pump(self, task_id: str, last_id: str | None) -> None:
        try:
            async for event in follow(self.hub, self.store, task_id, last_id, self.watch):
                await self.queue.put((task_id, event))
        except Exception as error:
            await self.queue.put((task_id, error))
            return
        await self.queue.put((task_id, FINISHED))

    async def announce(self) -> None:
        await self.queue.put(("", NEWS))

    async def next(self) -> tuple[str, Event]:
        """The next event of any task: `FINISHED` when a task's follow has ended, `NEWS`
        once announced; a pump's failure is raised here."""
        task_id, item = await self.queue.get()
        if isinstance(item, Exception):
            raise item
        return task_id, item

    async def close(self, *others: asyncio.Task[None]) -> None:
        await _stop([*others, *self.pumps.values()])


async def follow_many(
    hub: Hub,
    store: TaskStore,
    task_ids: list[str],
    cursor: list[str | None],
    watch: Watch | None = None,
) -> AsyncIterator[Event]:
    """Events of several distinct tasks on one stream; each event's id is the cursor of
    all tasks."""
    merge = Merge(hub, store, watch)
    position = {task_id: index for index, task_id in enumerate(task_ids)}
    for task_id, last_id in zip(task_ids, cursor, strict=True):
        merge.follow(task_id, last_id)
    try:
        following = len(task_ids)
        while following:
            task_id, event = await merge.next()
            if event is FINISHED:
                following -= 1
                continue
            if event in ENDINGS:
                yield event
                return
            cursor[position[task_id]] = event.id
            yield Event(",".join(c or "" for c in cursor), event.type, event.data)
    finally:
        await merge.close()


@dataclass
class AllCursor:
    """Where a stream of all of a user's tasks is: `since` (Redis ms: tasks created
    after it are new to the stream) and the last id of every task it has followed ("" for
    a task whose first event has not been delivered yet).

    As text, each event's id: `since|task=id,task=id`.
    """

    since: int
    positions: dict[str, str]

    def __str__(self) -> str:
        return f"{self.since}|" + ",".join(f"{t}={i}" for t, i in self.positions.items())

    @classmethod
    def parse(cls, value: str | None) -> AllCursor | None:
        since, _, rest = (value or "").partition("|")
        if not is_digits(since):
            return None
        positions: dict[str, str] = {}
        for part in filter(None, rest.split(",")):
            task_id, _, last_id = part.partition("=")
            if not is_task_id(task_id) or (last_id and parse_event_id(last_id) is None):
                return None
            positions[task_id] = last_id
        return cls(int(since), positions)


async def follow_all(
    hub: Hub, store: TaskStore, owner: str, cursor: AllCursor | None, watch: Watch | None
) -> AsyncIterator[Event]:
    """Every task of `owner`, those created after the stream opened included, on one
    stream that does not end by itself; each event's id is the `AllCursor`.

    A fresh stream follows the owner's unfinished tasks; a resumed one, the tasks of its
    cursor from their ids, and every task created since `since` from its start. New tasks
    are announced on the owner's channel (`write.lua` publishes each creation there)."""
    merge = Merge(hub, store, watch)
    ended: set[str] = set()

    async with hub.listen(f"user:{owner}") as news:
        fresh = cursor is None
        if cursor is None:
            cursor = AllCursor(await store.now_ms() - 1, {})
            # a fresh stream follows what is still running: the owner's tasks in flight
            first = {task_id: "" for task_id in await store.in_flight(owner)}
        else:
            first = dict(cursor.positions)  # a resumed one, what its cursor holds

        def start(task_id: str, known: str | None) -> None:
            cursor.positions.setdefault(task_id, known or "")
            merge.follow(task_id, known or None)

        async def discover() -> None:
            """Follow every task created since `since` (the index's work: not the owner's
            whole history) that the stream does not follow yet."""
            for task_id, _ in await store.of_user(owner, since=cursor.since):
                if task_id not in merge.pumps:
                    start(task_id, cursor.positions.get(task_id))

        async def prune() -> None:
            """Keep the cursor short: move `since` past every task the stream has fully
            known, and forget those of them that have ended (delivered whole)."""
            owned = sorted(await store.of_user(owner, since=cursor.since), key=lambda p: p[1])
            for created, group in itertools.groupby(owned, key=lambda pair: pair[1]):
                if not all(task_id in cursor.positions for task_id, _ in group):
                    break
                cursor.since = created
            later = {task_id for task_id, created in owned if created > cursor.since}
            for task_id in ended - later:  # created by `since`, and delivered whole
                cursor.positions.pop(task_id, None)
            ended.intersection_update(later)

        async def announcements() -> None:
            while True:
                await news.wait()
                news.queue.clear()
                news.stale = False
                await merge.announce()  # something was created: look again

        watcher = asyncio.create_task(announcements())
        try:
            opened = await asyncio.gather(*(store.get(t) for t in first))  # pipelined
            for task in opened:  # gone ones are not followed, nor a fresh stream's ended
                if task is not None and not (fresh and task.terminal):
                    start(task.id, first[task.id] or None)
            await discover()
            while True:
                try:
                    task_id, event = await _before(watch, merge.next())
                except TimeoutError:
                    yield _ending(watch)
                    return
                if news.closing:
                    yield RECONNECT
                    return
                if event is NEWS:
                    await discover()
                    continue
                if event is FINISHED:
                    ended.add(task_id)
                    await prune()
                    continue
                if event in ENDINGS:
                    yield event
                    return
                cursor.positions[task_id] = event.id
                yield Event(str(cursor), event.type, event.data)
        finally:
            await merge.close(watcher)


async def _before(watch: Watch | None, waiting: Awaitable[T]) -> T:
    """What `waiting` gives, or TimeoutError once the watched login has expired or has
    been revoked (even if `waiting` was answered in the same instant)."""
    if watch is None:
        return await waiting
    if watch.ended:
        if inspect.iscoroutine(waiting):
            waiting.close()  # never started: nothing to wait for
        raise TimeoutError
    with watch.bounding():
        answer = await waiting
    if watch.ended:
        raise TimeoutError
    return answer


def _ending(watch: Watch | None) -> Event:
    return REVOKED if watch is not None and watch.revoked else REAUTHENTICATE


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with suppress(asyncio.CancelledError):
            await task
