"""The names of the task record's Redis keys and channels, in one place (tests use them too).

Every key of one task carries the hash tag `{<taskId>}`, and so does its channel, so that
they live on one shard of a cluster and `write.lua` touches one slot. The keys of a user's
tasks and the user's channel carry `{user:<id>}` (`owner.lua`). These live on the streams
store (`TASKSTREAM_STREAMS_URL`); the keys on `REDIS_URL` (the worker's leases, accounts,
logins, plans, limits) are named in `jobs/infra/keys.py`.
"""

from __future__ import annotations


def channel(name: str) -> str:
    """The pub/sub channel of a task (or of `user:<id>`, `sessions`): `ts:{<name>}`."""
    return f"ts:{{{name}}}"


def task(task_id: str) -> str:
    """The record: a hash of the task's fields, its owner and its snapshot."""
    return f"{channel(task_id)}:task"


def events(task_id: str) -> str:
    """The capped stream of the task's events: the replay log."""
    return f"{channel(task_id)}:events"


def text(task_id: str) -> str:
    """The text generated so far, whole (the stream is capped, this is not)."""
    return f"{channel(task_id)}:text"


def result(task_id: str) -> str:
    return f"{channel(task_id)}:result"


def record(task_id: str) -> list[str]:
    """The keys the record's scripts take, in their order (`write.lua`, `read.lua`)."""
    return [task(task_id), events(task_id), text(task_id), result(task_id)]


def polls(task_id: str) -> str:
    """How many times the task's status was polled."""
    return f"{channel(task_id)}:polls"


def user_tasks(owner: str) -> str:
    """A user's tasks, scored by creation time (ms)."""
    return f"{channel(f'user:{owner}')}:tasks"


def user_in_flight(owner: str) -> str:
    """A user's tasks not yet ended."""
    return f"{channel(f'user:{owner}')}:inflight"
