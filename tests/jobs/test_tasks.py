"""The task record: one atomic writer, terminal states final, replay and resync."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from jobs import keys
from jobs.tasks import TaskStore, WriteRejected, parse_event_id


async def test_create_writes_a_pending_snapshot_and_a_first_status_event(store: TaskStore):
    task = await store.create("demo", owner="u1")
    assert task.snapshot["status"] == "pending"
    assert task.snapshot["version"] == 1
    assert task.owner == "u1"
    events = await store.redis.xrange(keys.events(task.id))
    assert [(eid, f["event"]) for eid, f in events] == [(task.last_event_id, "status")]


async def test_every_write_bumps_the_version_and_appends_one_event(store: TaskStore):
    task = await store.create("demo")
    event = await store.write(task.id, "progress", {"status": "processing", "progress": 30})
    after = await store.get(task.id)
    assert after is not None
    assert after.snapshot["version"] == 2
    assert after.last_event_id == event.id
    assert json.loads(event.data)["progress"] == 30


async def test_progress_never_decreases_within_an_attempt(store: TaskStore):
    task = await store.create("demo")
    await store.write(task.id, "status", {"status": "processing", "attempt": 1, "progress": 0})
    await store.write(task.id, "progress", {"progress": 60})
    event = await store.write(task.id, "progress", {"progress": 20})
    assert json.loads(event.data)["progress"] == 60
    # a new attempt starts again from zero
    event = await store.write(task.id, "status", {"attempt": 2, "progress": 0})
    assert json.loads(event.data)["progress"] == 0


@pytest.mark.parametrize("terminal", ["completed", "failed", "cancelled"])
async def test_terminal_states_are_final(store: TaskStore, terminal: str):
    task = await store.create("demo")
    await store.write(task.id, terminal, {"status": terminal})
    with pytest.raises(WriteRejected) as rejected:
        await store.write(task.id, "progress", {"progress": 90})
    assert (rejected.value.reason, rejected.value.status) == ("final", terminal)
    after = await store.get(task.id)
    assert after is not None and after.snapshot["version"] == 2


async def test_a_write_fenced_by_an_old_attempt_is_refused(store: TaskStore):
    task = await store.create("demo")
    await store.write(task.id, "status", {"status": "processing", "attempt": 2})
    with pytest.raises(WriteRejected) as rejected:
        await store.write(task.id, "progress", {"progress": 50}, fence=1)
    assert rejected.value.reason == "stale"


async def test_unknown_task_writes_are_refused_and_create_is_not_repeated(store: TaskStore):
    with pytest.raises(WriteRejected) as rejected:
        await store.write("00000000-0000-4000-8000-000000000000", "progress", {"progress": 1})
    assert rejected.value.reason == "missing"
    task = await store.create("demo")
    with pytest.raises(WriteRejected):
        await store.create("demo", task_id=task.id)


async def test_replay_returns_exactly_the_events_after_an_id(store: TaskStore):
    task = await store.create("demo")
    written = [await store.write(task.id, "progress", {"progress": p}) for p in (10, 20, 30, 40)]
    replay = await store.replay(task.id, written[1].id)
    assert replay is not None and not replay.resync
    assert [e.id for e in replay.events] == [w.id for w in written[2:]]


async def test_replay_from_an_id_older_than_the_capped_stream_asks_for_resync(
    store: TaskStore,
):
    small = TaskStore(store.redis, replace(store.settings, stream_maxlen=5))
    task = await small.create("demo")
    for p in range(300):
        await small.write(task.id, "progress", {"progress": p % 100})
    assert await small.redis.xlen(keys.events(task.id)) < 300
    replay = await small.replay(task.id, task.last_event_id)
    assert replay is not None and replay.resync
    recent = await small.redis.xrevrange(keys.events(task.id), count=2)
    replay = await small.replay(task.id, recent[1][0])
    assert replay is not None and not replay.resync
    assert [e.id for e in replay.events] == [recent[0][0]]


async def test_partial_text_is_kept_whole_even_when_the_stream_is_trimmed(store: TaskStore):
    small = TaskStore(store.redis, replace(store.settings, stream_maxlen=5))
    task = await small.create("business_plan")
    chunks = [f"문단 {i}. " for i in range(250)]
    for chunk in chunks:
        event = await small.write(task.id, "partial", {}, text=chunk)
    assert json.loads(event.data)["text"] == chunks[-1]
    full = await small.get(task.id, with_text=True)
    assert full is not None
    assert full.snapshot["text"] == "".join(chunks)
    assert full.snapshot["textLength"] == len("".join(chunks).encode())


def test_event_ids_parse_and_order_numerically():
    assert parse_event_id("1764136800000-10") == (1764136800000, 10)
    assert parse_event_id("1764136800000-10") > parse_event_id("1764136800000-9")  # type: ignore[operator]
    for bad in ("", "abc", "1-", "-1", "1-2-3", None):
        assert parse_event_id(bad) is None


async def test_a_new_attempt_starts_its_text_afresh(store: TaskStore):
    task = await store.create("business_plan")
    await store.write(task.id, "status", {"status": "processing", "attempt": 1})
    await store.write(task.id, "partial", {}, text="first try, cut short")
    event = await store.write(task.id, "status", {"attempt": 2, "progress": 0})
    assert json.loads(event.data)["textLength"] is None
    await store.write(task.id, "partial", {}, text="second")
    again = await store.get(task.id, with_text=True)
    assert again is not None and again.snapshot["text"] == "second"
