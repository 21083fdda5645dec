"""Task metrics kept in Redis, so that every process counts into, and reports, the same.

Counters and histogram buckets live in one hash, `ts:metrics`, incremented when a task is
created and when it ends (by `TaskStore`, the one place every terminal write passes).
They are cluster-wide: every web process reports the same values, so a dashboard takes
`max` over instances, not `sum`. Workers publish their own gauges under
`ts:metrics:worker:<name>` every few seconds, with a TTL, so a dead worker drops out; web
processes their stream figures under `ts:metrics:web:<name>` the same way.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from jobs.infra import keys

KEY = keys.METRICS
WORKERS = keys.WORKER_METRICS
WEBS = keys.WEB_METRICS  # each web process's stream figures (`server/realtime/figures.py`)
WORKER_GAUGES = ("jobs_running", "jobs_complete", "jobs_failed", "jobs_retried")
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)
POLL_BUCKETS = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0, 100.0)


def _bucket(value: float, bounds: tuple[float, ...]) -> str:
    return next((f"{b:g}" for b in bounds if value <= b), "+Inf")


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def record_created(redis: Redis, kind: str) -> None:
    await redis.hincrby(KEY, f"created|{kind}", 1)  # type: ignore[misc]


async def record_finished(redis: Redis, snapshot: dict[str, Any], polls: int) -> None:
    """Count an ended task: its outcome, how long it took, how often it was polled."""
    kind, status = snapshot["kind"], snapshot["status"]
    ended = _seconds(snapshot["finishedAt"]) if snapshot.get("finishedAt") else time.time()
    duration = ended - _seconds(snapshot["createdAt"])
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(KEY, f"finished|{kind}|{status}|{snapshot.get('errorCode') or ''}", 1)
        pipe.hincrby(KEY, f"duration|{kind}|{_bucket(duration, DURATION_BUCKETS)}", 1)
        pipe.hincrbyfloat(KEY, f"duration_sum|{kind}", duration)
        pipe.hincrby(KEY, f"polls|{kind}|{_bucket(polls, POLL_BUCKETS)}", 1)
        pipe.hincrby(KEY, f"polls_sum|{kind}", polls)
        await pipe.execute()


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def publish(redis: Redis, prefix: str, gauges: Mapping[str, float], ttl_s: int) -> None:
    """This process's gauges under `prefix` (`WORKERS`, `WEBS`), for `ttl_s`."""
    key = prefix + process_name()
    async with redis.pipeline(transaction=True) as tx:
        tx.delete(key)  # a field no longer published goes too
        tx.hset(key, mapping=dict(gauges))
        tx.expire(key, ttl_s)
        await tx.execute()


async def read(redis: Redis) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The task metrics hash, and each live worker's gauges."""
    return await redis.hgetall(KEY), await published(redis, WORKERS)  # type: ignore[misc]


async def published(redis: Redis, prefix: str) -> dict[str, dict[str, str]]:
    """Each live process's gauges under `prefix`, by its name."""
    found: dict[str, dict[str, str]] = {}
    async for key in redis.scan_iter(match=prefix + "*", count=100):
        found[key.removeprefix(prefix)] = await redis.hgetall(key)  # type: ignore[misc]
    return found
