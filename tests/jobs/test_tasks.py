"""The task record: one atomic writer, terminal states final, replay and resync."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from jobs.record import keys
from jobs.record.ids import parse_event_id
from jobs.record.tasks import TaskStore, WriteRejected
from jobs.record.values import Status


async def test_create_writes_a_pending_snapshot_and_a_first_status_event(store: TaskStore):
    task = await store.create("demo", owner="u1")
    assert task.snapshot["status"] == "pending"
    assert task.snapshot["version"] == 1
    assert task.owner == "u1"
    events = await store.records.xrange(keys.events(task.id))
    assert [(eid, f["event"]) for eid, f in events] == [(task.last_event_id, "status")]


async def test_every_write_bumps_the_version_and_appends_one_event(store: TaskStore):
    task = await store.create("demo")
    await store.start(task.id, 1)
    event = await store.progress(task.id, 1, {"progress": 30})
    after = await store.get(task.id)
    assert after is not None
    assert after.snapshot["version"] == 3
    assert after.last_event_id == event.id
    assert json.loads(event.data)["progress"] == 30


async def test_progress_never_decreases_within_an_attempt(store: TaskStore):
    task = await store.create("demo")
    await store.start(task.id, 1)
    await store.progress(task.id, 1, {"progress": 60})
    event = await store.progress(task.id, 1, {"progress": 20})
    assert json.loads(event.data)["progress"] == 60
    # a new attempt starts again from zero
    event = await store.start(task.id, 2)
    assert json.loads(event.data)["progress"] == 0


ENDINGS = {
    "completed": lambda store, task_id: store.finish(task_id, 1, {"n": 1}, "/r"),
    "failed": lambda store, task_id: store.fail(task_id, "BROKEN", "it broke", attempt=1),
    "cancelled": lambda store, task_id: store.cancel(task_id),
}


@pytest.mark.parametrize("terminal", list(ENDINGS))
async def test_terminal_states_are_final(store: TaskStore, terminal: str):
    task = await store.create("demo")
    await store.start(task.id, 1)
    ended = await ENDINGS[terminal](store, task.id)
    assert (ended.type, json.loads(ended.data)["status"]) == (terminal, terminal)
    for write in (store.progress(task.id, 1, {"progress": 90}), store.cancel(task.id)):
        with pytest.raises(WriteRejected) as rejected:
            await write
        assert (rejected.value.reason, rejected.value.status) == ("final", terminal)
    after = await store.get(task.id)
    assert after is not None and after.snapshot["version"] == 3
    assert after.status is Status(terminal) and after.terminal
    assert after.snapshot["finishedAt"] is not None
    assert after.snapshot["currentStage"] is None


async def test_each_transition_writes_what_it_says(store: TaskStore):
    task = await store.create("demo")
    started = json.loads((await store.start(task.id, 1)).data)
    assert (started["status"], started["attempt"], started["currentStage"]) == (
        "processing", 1, "starting",
    )  # fmt: skip
    retried = json.loads((await store.retry(task.id, 1, "UPSTREAM_TIMEOUT", "slow")).data)
    assert (retried["status"], retried["currentStage"], retried["errorCode"]) == (
        "pending", "retrying", "UPSTREAM_TIMEOUT",
    )  # fmt: skip
    again = json.loads((await store.start(task.id, 2)).data)
    assert (again["attempt"], again["errorCode"], again["errorMessage"]) == (2, None, None)
    done = json.loads((await store.finish(task.id, 2, {"answer": 42}, "/there")).data)
    assert (done["status"], done["progress"], done["resultUrl"]) == ("completed", 100, "/there")
    assert await store.result(task.id) == {"answer": 42}


async def test_a_lost_worker_fails_the_task_worker_lost_unless_another_attempt_runs(
    store: TaskStore,
):
    task = await store.create("demo")
    await store.start(task.id, 1)
    await store.start(task.id, 2)
    with pytest.raises(WriteRejected) as rejected:
        await store.lose(task.id, 1)  # attempt 1's worker: another attempt took over
    assert rejected.value.reason == "stale"
    lost = json.loads((await store.lose(task.id, 2)).data)
    assert (lost["status"], lost["errorCode"]) == ("failed", "WORKER_LOST")


async def test_a_write_fenced_by_an_old_attempt_is_refused(store: TaskStore):
    task = await store.create("demo")
    await store.start(task.id, 2)
    with pytest.raises(WriteRejected) as rejected:
        await store.progress(task.id, 1, {"progress": 50})
    assert rejected.value.reason == "stale"


async def test_an_owned_task_counts_in_flight_until_it_ends(store: TaskStore):
    first = await store.create("demo", owner="u-flight", in_flight_limit=1)
    with pytest.raises(WriteRejected) as rejected:
        await store.create("demo", owner="u-flight", in_flight_limit=1)
    assert rejected.value.reason == "limit"
    await store.cancel(first.id)
    second = await store.create("demo", owner="u-flight", in_flight_limit=1)
    assert [t for t, _ in await store.of_user("u-flight")] == [second.id, first.id]
    assert await store.records.smembers(keys.user_in_flight("u-flight")) == {second.id}  # type: ignore[misc]


async def test_a_task_that_ended_uncounted_does_not_hold_its_owners_limit(store: TaskStore):
    task = await store.create("demo", owner="u-crash", in_flight_limit=1)
    await store.cancel(task.id)
    # as if the process had died between the ending write and its count
    await store.records.sadd(keys.user_in_flight("u-crash"), task.id)  # type: ignore[misc]
    assert await store.create("demo", owner="u-crash", in_flight_limit=1)


async def test_a_task_is_owned_by_its_owner_only(store: TaskStore):
    mine = await store.create("demo", owner="u-a")
    nobodys = await store.create("email", owner="")
    assert (await store.owned(mine.id, "u-a")) == await store.get(mine.id)
    assert await store.owned(mine.id, "u-b") is None
    assert await store.owned(mine.id, "") is None
    assert (await store.owned(nobodys.id, "")) is not None
    assert await store.owned(nobodys.id, "u-a") is None
    assert await store.owned("not-a-task-id", "u-a") is None


async def test_unknown_task_writes_are_refused_and_create_is_not_repeated(store: TaskStore):
    with pytest.raises(WriteRejected) as rejected:
        await store.cancel("00000000-0000-4000-8000-000000000000")
    assert rejected.value.reason == "missing"
    task = await store.create("demo")
    with pytest.raises(WriteRejected):
        await store.create("demo", task_id=task.id)


async def test_replay_returns_exactly_the_events_after_an_id(store: TaskStore):
    task = await store.create("demo")
    written = [await store.progress(task.id, 0, {"progress": p}) for p in (10, 20, 30, 40)]
    replay = await store.replay(task.id, written[1].id)
    assert replay is not None and not replay.resync
    assert [e.id for e in replay.events] == [w.id for w in written[2:]]


async def test_replay_from_an_id_older_than_the_capped_stream_asks_for_resync(
    store: TaskStore,
):
    small = TaskStore(store.redis, replace(store.settings, stream_maxlen=5), store.records)
    task = await small.create("demo")
    for p in range(300):
        await small.progress(task.id, 0, {"progress": p % 100})
    assert await small.redis.xlen(keys.events(task.id)) < 300
    replay = await small.replay(task.id, task.last_event_id)
    assert replay is not None and replay.resync
    recent = await small.redis.xrevrange(keys.events(task.id), count=2)
    replay = await small.replay(task.id, recent[1][0])
    assert replay is not None and not replay.resync
    assert [e.id for e in replay.events] == [recent[0][0]]


async def test_partial_text_is_kept_whole_even_when_the_stream_is_trimmed(store: TaskStore):
    small = TaskStore(store.redis, replace(store.settings, stream_maxlen=5), store.records)
    task = await small.create("business_plan")
    chunks = [f"문단 {i}. " for i in range(250)]
    for chunk in chunks:
        event = await small.progress(task.id, 0, {}, text=chunk)
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
    await store.start(task.id, 1)
    await store.progress(task.id, 1, {}, text="first try, cut short")
    event = await store.start(task.id, 2)
    assert json.loads(event.data)["textLength"] is None
    await store.progress(task.id, 2, {}, text="second")
    again = await store.get(task.id, with_text=True)
    assert again is not None and again.snapshot["text"] == "second"
