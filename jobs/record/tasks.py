"""The task record and its event stream.

A task lives in Redis under keys that share the hash tag `{taskId}`: a hash (state, owner,
the public snapshot as JSON), a capped stream of events (the replay log), the text written
so far, and the result. Every change goes through `write.lua`, which updates the hash,
bumps the version, appends to the stream and publishes on the task's (sharded) channel in
one atomic step; nothing else writes task state. The event's JSON is built once, in that
script, and travels unchanged to every client.

The records live on the streams store (`TASKSTREAM_STREAMS_URL`: by default the Redis of
`REDIS_URL`, or a cluster); the leases and the metrics on `REDIS_URL`'s, with the queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path
from typing import Any, get_args, get_type_hints

from redis.asyncio import Redis

from jobs.infra import metrics
from jobs.infra.config import Settings
from jobs.infra.connections import PATIENT, Client, Patience, Script, connect_streams
from jobs.record import keys
from jobs.record.batch import Batched
from jobs.record.clock import now_iso
from jobs.record.ids import is_task_id, parse_event_id
from jobs.record.leases import Leases
from jobs.record.values import Event, Replay, Status, Task, TaskSnapshot

logger = logging.getLogger(__name__)


class ReadRefused(Exception):
    """A read refused because its guard key exists (the reader's login was revoked)."""


class WriteRejected(Exception):
    """A write that the record refused: unknown task, terminal task, or a stale attempt."""

    def __init__(self, reason: str, status: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


# the snapshot's fields as `write.lua` builds it (`text` and `resync` are added on the way
# out), and those stored as numbers; the script is given them from `TaskSnapshot`
SNAPSHOT_FIELDS = [name for name in get_type_hints(TaskSnapshot) if name not in {"text", "resync"}]
NUMBER_FIELDS = [
    name
    for name, hint in get_type_hints(TaskSnapshot).items()
    if name in SNAPSHOT_FIELDS and {int, float} & set(get_args(hint) or (hint,))
]


def _script(name: str) -> str:
    text = (Path(__file__).parent / name).read_text()
    public = ", ".join(f"'{name}'" for name in SNAPSHOT_FIELDS)
    numbers = ", ".join(f"{name} = true" for name in NUMBER_FIELDS)
    return text.replace("{PUBLIC_FIELDS}", "{" + public + "}").replace(
        "{NUMBER_FIELDS}", "{" + numbers + "}"
    )


def _register(client: Client, name: str) -> Script:
    """The script, run by its SHA on `client` (a cluster's too: typed for a server alone)."""
    return Script(client, _script(name))  # type: ignore[arg-type]


def _task_from_hash(fields: dict[str, str]) -> Task:
    raw = fields["snapshot"]
    return Task(json.loads(raw), fields.get("owner", ""), fields["lastEventId"], raw)


def _event(event_id: str, fields: dict[str, str]) -> Event:
    return Event(event_id, fields["event"], fields["data"])


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


class TaskStore:
    """Creates tasks, writes their changes and reads them back. Needs `decode_responses`.

    `redis` is `REDIS_URL`'s client (leases, metrics); `records` the streams store's,
    when it is another (a cluster)."""

    def __init__(self, redis: Redis, settings: Settings, records: Client | None = None) -> None:
        self.redis = redis
        self.leases = Leases(redis)  # of running attempts, beside the queue
        self.records = redis if records is None else records
        self.settings = settings
        self._write = _register(self.records, "write.lua")
        self._owner = _register(self.records, "owner.lua")
        # reads are many and small (every stream's start, every status poll): batched
        self._read = Batched(_register(self.records, "read.lua"))

    @classmethod
    def connected(
        cls, redis: Redis, settings: Settings, name: str, patience: Patience = PATIENT
    ) -> TaskStore:
        """The store over `redis`, its records on the streams store's own client when that
        is another server (`TASKSTREAM_STREAMS_URL`), as patient as `redis`."""
        url, streams_url = settings.require_redis_url(), settings.require_streams_url()
        if streams_url == url:
            return cls(redis, settings)
        records = connect_streams(streams_url, f"{name}:streams", patience=patience)
        return cls(redis, settings, records)

    async def aclose(self) -> None:
        """Close the streams store's client, when it is the store's own (not `redis`)."""
        if self.records is not self.redis:
            await self.records.aclose()

    async def create(
        self,
        kind: str,
        *,
        owner: str = "",
        task_id: str | None = None,
        max_attempts: int = 1,
        in_flight_limit: int | None = None,
        **fields: Any,
    ) -> Task:
        """A new `pending` task; `WriteRejected("limit")` when its owner already has
        `in_flight_limit` tasks not ended (checked and counted atomically)."""
        task_id = task_id or str(uuid.uuid4())
        if owner and not await self._admit(owner, task_id, in_flight_limit):
            # the count may hold tasks that ended uncounted: forget them, then try once more
            if not await self._forget_ended(owner) or not await self._admit(
                owner, task_id, in_flight_limit
            ):
                raise WriteRejected("limit")
        patch = {
            "taskId": task_id,
            "kind": kind,
            "owner": owner,
            "status": Status.PENDING,
            "progress": 0,
            "attempt": 0,
            "maxAttempts": max_attempts,
            "createdAt": now_iso(),
            **fields,
        }
        try:
            created = await self.write(task_id, "create", patch)
        except WriteRejected:  # the id is taken: not counted for this owner after all
            if owner:
                await self.records.srem(keys.user_in_flight(owner), task_id)  # type: ignore[misc]
            raise
        if owner:
            created_ms = created.id.partition("-")[0]
            listing = [
                str(self.settings.retention_s),
                keys.channel(f"user:{owner}"),
                created.message,
            ]
            try:
                await self._owner(self._owner_keys(owner), ["list", task_id, created_ms, *listing])
            except Exception:  # the task exists and will run: better unlisted than unqueued
                logger.exception(
                    "could not list the task among its owner's", extra={"taskId": task_id}
                )
        await metrics.record_created(self.redis, kind)
        # the event's data is the new task's snapshot: no need to read it back
        return Task(json.loads(created.data), owner, created.id, created.data)

    async def owned(self, task_id: str, user: str) -> Task | None:
        """The task if `user` owns it (`""`: if nobody does); else None, as for an unknown
        or malformed id, so that another user's task cannot be told from a missing one."""
        task = await self.get(task_id) if is_task_id(task_id) else None
        return task if task is not None and task.owner == user else None

    @staticmethod
    def _owner_keys(owner: str) -> list[str]:
        return [keys.user_in_flight(owner), keys.user_tasks(owner)]

    async def _admit(self, owner: str, task_id: str, limit: int | None) -> bool:
        limit_arg = "" if limit is None else str(limit)
        return bool(await self._owner(self._owner_keys(owner), ["admit", task_id, limit_arg]))

    async def of_user(self, owner: str, since: int = 0) -> list[tuple[str, int]]:
        """The owner's tasks that have not expired, created after `since` (Redis's clock,
        ms), with their creation times, newest first."""
        index = await self._user_index(owner)
        found: list[tuple[str, float]] = await self.records.zrevrangebyscore(
            index, "+inf", f"({since}", withscores=True
        )
        return [(task_id, int(score)) for task_id, score in found]

    async def page_of_user(self, owner: str, offset: int, limit: int) -> tuple[int, list[str]]:
        """How many tasks the owner has, and the ids of a page of them, newest first: the
        index's work, whatever the owner's history."""
        index = await self._user_index(owner)
        async with self.records.pipeline(transaction=False) as pipe:
            pipe.zcard(index)
            pipe.zrevrange(index, offset, offset + limit - 1)
            total, page = await pipe.execute()
        return int(total), list(page)

    async def in_flight(self, owner: str) -> set[str]:
        """The owner's tasks not known to have ended."""
        found: set[str] = await self.records.smembers(keys.user_in_flight(owner))  # type: ignore[misc]
        return found

    async def _user_index(self, owner: str) -> str:
        """The owner's index of tasks, the expired dropped."""
        index = keys.user_tasks(owner)
        now_ms = await self.now_ms()
        await self.records.zremrangebyscore(index, 0, now_ms - self.settings.retention_s * 1000)
        return index

    async def _forget_ended(self, owner: str) -> int:
        """Drop from the owner's tasks in flight those that expired or ended uncounted."""
        key = keys.user_in_flight(owner)
        members: set[str] = await self.records.smembers(key)  # type: ignore[misc]
        gone = [t for t in members if (task := await self.get(t)) is None or task.terminal]
        if gone:
            await self.records.srem(key, *gone)  # type: ignore[misc]
        return len(gone)

    async def now_ms(self) -> int:
        """Redis's clock, the one event ids are stamped with."""
        seconds, micros = await self.records.time()
        return int(seconds) * 1000 + int(micros) // 1000

    # One method per transition; each is one call of `write.lua`. `attempt` fences a
    # worker's writes: an attempt taken over, or a task that has ended, refuses them.

    async def start(self, task_id: str, attempt: int) -> Event:
        """pending → processing: attempt `attempt` begins, its text from the start."""
        patch = {
            "status": Status.PROCESSING,
            "attempt": attempt,
            "progress": 0,
            "startedAt": now_iso(),
            "currentStage": "starting",
            "errorCode": None,
            "errorMessage": None,
        }
        return await self.write(task_id, "status", patch)

    async def progress(
        self, task_id: str, attempt: int, patch: dict[str, Any], text: str = ""
    ) -> Event:
        """New progress, stage or time left, and text written since the last report."""
        return await self.write(
            task_id, "partial" if text else "progress", patch, fence=attempt, text=text
        )

    async def retry(self, task_id: str, attempt: int, code: str, message: str) -> Event:
        """processing → pending: the attempt failed in a way worth trying again."""
        patch = {
            "status": Status.PENDING,
            "currentStage": "retrying",
            "estimatedRemaining": None,
            "errorCode": code,
            "errorMessage": message,
        }
        return await self.write(task_id, "status", patch, fence=attempt)

    async def finish(self, task_id: str, attempt: int, result: Any, result_url: str) -> Event:
        """processing → completed, with the result."""
        patch = {"progress": 100, "estimatedRemaining": 0, "resultUrl": result_url}
        return await self._end(task_id, Status.COMPLETED, patch, attempt, result)

    async def fail(
        self, task_id: str, code: str, message: str, *, attempt: int | None = None
    ) -> Event:
        """→ failed, with an error code and a message for people."""
        patch = {"errorCode": code, "errorMessage": message}
        return await self._end(task_id, Status.FAILED, patch, attempt)

    async def cancel(self, task_id: str) -> Event:
        """→ cancelled, whatever attempt runs (its next write is refused)."""
        return await self._end(task_id, Status.CANCELLED, {"estimatedRemaining": None})

    async def lose(self, task_id: str, attempt: int) -> Event:
        """→ failed `WORKER_LOST`: the worker running the last attempt stopped."""
        message = "the worker running this task stopped"
        return await self.fail(task_id, "WORKER_LOST", message, attempt=attempt)

    async def _end(
        self,
        task_id: str,
        status: Status,
        patch: dict[str, Any],
        attempt: int | None = None,
        result: Any = None,
    ) -> Event:
        patch = {"status": status, "finishedAt": now_iso(), "currentStage": None, **patch}
        return await self.write(task_id, status, patch, fence=attempt, result=result)

    async def write(
        self,
        task_id: str,
        event: str,
        patch: dict[str, Any],
        *,
        fence: int | None = None,
        text: str = "",
        result: Any = None,
    ) -> Event:
        """Apply one change atomically; raises `WriteRejected` when the record refuses it."""
        reply = await self._write(
            keys=keys.record(task_id),
            args=[
                event,
                json.dumps(patch, ensure_ascii=False),
                "" if fence is None else str(fence),
                self.settings.stream_maxlen,
                self.settings.retention_s,
                keys.channel(task_id),
                text,
                "" if result is None else json.dumps(result, ensure_ascii=False),
            ],
        )
        if reply[0] != "ok":
            raise WriteRejected(reply[0], reply[1] if len(reply) > 1 else None)
        written = Event(reply[1], reply[2], reply[3])
        if len(reply) > 4:  # an owned task ended: no longer among its owner's in flight
            try:
                await self.records.srem(keys.user_in_flight(reply[4]), task_id)  # type: ignore[misc]
            except Exception:  # the next create over the limit forgets it (`_forget_ended`)
                logger.exception("could not count the task out of its owner's in flight")
        if written.terminal:
            try:
                polls = int(await self.records.get(keys.polls(task_id)) or 0)
                await metrics.record_finished(self.redis, json.loads(written.data), polls)
            except Exception:  # the state is written; a lost count must not undo that
                logger.exception("could not count the task's end")
        return written

    async def count_poll(self, task_id: str) -> None:
        """One more status poll of this task (for the polls-per-task histogram)."""
        if await self.records.incr(keys.polls(task_id)) == 1:
            await self.records.expire(keys.polls(task_id), self.settings.retention_s)

    async def get(self, task_id: str, *, with_text: bool = False) -> Task | None:
        reply = await self._read(keys.record(task_id)[:3], ["", "text" if with_text else ""])
        if not reply[0]:
            return None
        task = _task_from_hash(_pairs(reply[0]))
        if with_text and reply[1]:
            task.snapshot["text"] = reply[1]
        return task

    async def replay(
        self, task_id: str, after: str | None, guard: str | None = None
    ) -> Replay | None:
        """What a stream sends next, in one round trip (its start, or a catch-up): the task
        and the events after `after`; or, when there is no `after` or the events after it
        are gone (`resync`), the task with its text for a snapshot. `ReadRefused` when the key
        `guard` exists."""
        if after is not None and parse_event_id(after) is None:
            after = None
        read = keys.record(task_id)[:3]
        args = [after or "", "resync"]
        if guard is None:
            reply = await self._read(read, args)
        elif self.records is self.redis:  # the guard read in the same step
            reply = await self._read([*read, guard], args)
        else:  # the guard is on another server: read at the same time
            refused, reply = await asyncio.gather(self.redis.exists(guard), self._read(read, args))
            reply = ["refused"] if refused else reply
        if reply[0] == "refused":
            raise ReadRefused
        if not reply[0]:
            return None
        task = _task_from_hash(_pairs(reply[0]))
        if reply[1]:
            task.snapshot["text"] = reply[1]
        if after is None:
            return Replay(task, [], resync=False)
        if reply[2] != "held":
            return Replay(task, [], resync=True)
        return Replay(task, [_event(eid, _pairs(fields)) for eid, fields in reply[3]], False)

    async def result(self, task_id: str) -> Any:
        raw = await self.records.get(keys.result(task_id))
        return None if raw is None else json.loads(raw)
