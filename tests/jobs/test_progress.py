"""The progress reporter: bursts coalesced, the newest value always delivered."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from jobs.errors import TaskGone
from jobs.record import keys
from jobs.record.tasks import TaskStore
from jobs.runtime.progress import Progress


async def started(store: TaskStore) -> str:
    task = await store.create("demo")
    await store.start(task.id, 1)
    return task.id


async def events(store: TaskStore, task_id: str) -> list[tuple[str, dict[str, Any]]]:
    entries = await store.redis.xrange(keys.events(task_id))
    return [(f["event"], json.loads(f["data"])) for _, f in entries]


async def test_a_burst_becomes_one_event_now_and_one_with_the_newest_values(store: TaskStore):
    task_id = await started(store)
    progress = Progress(store, task_id, attempt=1, interval=30)
    for step in range(1, 51):
        await progress.update(progress=step * 2, stage="generating", estimated_remaining=50 - step)
    await progress.flush()
    written = [data for kind, data in await events(store, task_id) if kind == "progress"]
    assert [d["progress"] for d in written] == [2, 100]
    assert written[-1]["estimatedRemaining"] == 0
    assert written[-1]["currentStage"] == "generating"


async def test_the_timer_delivers_the_last_value_without_a_flush(store: TaskStore):
    task_id = await started(store)
    stream = keys.events(task_id)
    last_id = (await store.redis.xrevrange(stream, count=1))[0][0]
    progress = Progress(store, task_id, attempt=1, interval=0.5)
    for value in (10, 20, 30):
        await progress.update(progress=value)
    seen: list[int] = []
    async with asyncio.timeout(10):
        while not seen or seen[-1] != 30:
            reply = await store.redis.xread({stream: last_id}, block=1000)
            for _, entries in reply:
                for entry_id, fields in entries:
                    last_id = entry_id
                    seen.append(json.loads(fields["data"])["progress"])
    # the first value at once, the last by the timer; 20 is usually folded into 30, but
    # not on a machine so loaded that two writes take longer than the interval
    assert seen[0] == 10 and seen == sorted(set(seen)) and set(seen) <= {10, 20, 30}


async def test_progress_reported_lower_is_held_at_the_highest_value(store: TaskStore):
    task_id = await started(store)
    progress = Progress(store, task_id, attempt=1, interval=0)
    await progress.update(progress=70)
    await progress.update(progress=40)
    assert [d["progress"] for k, d in await events(store, task_id) if k == "progress"] == [70, 70]


async def test_partial_text_is_concatenated_never_dropped(store: TaskStore):
    task_id = await started(store)
    progress = Progress(store, task_id, attempt=1, interval=30)
    chunks = [f"줄 {i}\n" for i in range(40)]
    for chunk in chunks:
        await progress.partial(chunk)
    await progress.flush()
    partials = [d for k, d in await events(store, task_id) if k == "partial"]
    assert len(partials) == 2
    assert "".join(d["text"] for d in partials) == "".join(chunks)
    assert partials[1]["offset"] == len(chunks[0].encode())


async def test_a_cancelled_task_stops_its_job_at_its_report(store: TaskStore):
    task_id = await started(store)
    progress = Progress(store, task_id, attempt=1, interval=0)
    await store.cancel(task_id)
    with pytest.raises(TaskGone):
        await progress.update(progress=10)
    assert [k for k, _ in await events(store, task_id)] == ["status", "status", "cancelled"]


async def test_a_stopped_reporter_drops_what_is_pending_and_writes_nothing_more(store: TaskStore):
    task_id = await started(store)
    progress = Progress(store, task_id, attempt=1, interval=30)
    await progress.update(progress=10)  # written at once
    await progress.update(progress=20, stage="generating")  # pending, for the timer
    await progress.partial("쓰다 만 글")
    await progress.stop()  # the attempt failed: its retry is the next event, nothing after
    retried = await store.retry(task_id, 1, "UPSTREAM_UNAVAILABLE", "try again")
    await progress.update(progress=30)  # a job that goes on reporting: not written
    await progress.flush()
    written = await events(store, task_id)
    assert written[-1] == ("status", json.loads(retried.data))
    assert [d["progress"] for kind, d in written if kind == "progress"] == [10]
    assert not [d for kind, d in written if kind == "partial"]
