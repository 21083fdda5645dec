"""The task streams on a Valkey Cluster (3 primaries, 3 replicas, from the embedded binary):
the delivery contract as on one server (the same tests, run here against web and worker
processes whose `TASKSTREAM_STREAMS_URL` is the cluster), tasks spread over every shard, the
hub on one connection per shard, and a primary killed mid-stream."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.crc import key_slot

from jobs.infra.config import Settings
from jobs.infra.connections import Client, connect_streams
from jobs.record import keys
from jobs.record.tasks import TaskStore
from taskstream.embedded import Cluster
from tests.conftest import SuiteStore, own_deployment
from tests.realtime.test_all_tasks import (  # noqa: F401  (run here, on the cluster)
    test_a_resumed_stream_picks_up_where_it_was_and_what_was_created_meanwhile,
    test_ended_tasks_leave_the_cursor_and_are_not_followed_again,
    test_the_stream_follows_running_tasks_and_those_created_after_it_opened,
)
from tests.realtime.test_revocation import (  # noqa: F401
    http,
    test_an_ended_login_ends_its_sse_streams_with_revoked,
)
from tests.realtime.test_sse import (  # noqa: F401
    test_a_demo_tasks_events_arrive_complete_and_in_order,
    test_a_finished_task_streams_its_final_snapshot_then_204_on_reconnect,
    test_a_multi_task_stream_resumes_from_its_cursor,
    test_an_id_older_than_the_capped_stream_gets_a_resync_snapshot,
    test_live_events_follow_the_snapshot_as_they_are_written,
    test_many_tasks_share_one_stream_each_complete_and_in_order,
    test_reconnect_with_last_event_id_replays_exactly_the_missed_events_then_live,
)
from tests.realtime.test_ws import (  # noqa: F401
    test_many_tasks_on_one_socket_and_resume_with_last_event_id,
)
from tests.support import Account, Proc, SseStream, assert_no_gap, start_demo


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    nodes = Cluster(tmp_path_factory.mktemp("cluster"))
    nodes.start()
    yield nodes
    nodes.stop()


@pytest.fixture(scope="module")
def cluster_env(env: dict[str, str], cluster: Cluster) -> dict[str, str]:
    # the queue, accounts and leases stay on the suite's Valkey (REDIS_URL), on a queue
    # of this module's own
    return {**env, "TASKSTREAM_STREAMS_URL": cluster.url, "TASKSTREAM_QUEUE": "ts:test:cluster",
            "TASKSTREAM_TIMEOUT_DEMO": "60"}  # fmt: skip


web, worker, account, auth = own_deployment("cluster_env")


@pytest.fixture
async def records(cluster: Cluster) -> AsyncIterator[Client]:
    client = connect_streams(cluster.url, "taskstream:test:cluster")
    yield client
    await client.aclose()


@pytest.fixture
def redis(records: Client) -> Client:
    """What the shared tests read the task records with: the cluster."""
    return records


@pytest.fixture
async def store(
    valkey_client: Redis, settings: Settings, account: Account, records: Client
) -> TaskStore:
    return SuiteStore(valkey_client, settings, account.user_id, records)


@pytest.fixture
async def valkey_client(env: dict[str, str]) -> AsyncIterator[Redis]:
    client = Redis.from_url(env["REDIS_URL"], decode_responses=True)
    yield client
    await client.aclose()


def primaries(cluster: Cluster) -> list[SyncRedis]:
    return [node.client() for node in cluster.live() if node.is_primary]


async def test_tasks_and_their_keys_spread_over_every_shard_each_task_on_one(
    store: TaskStore, cluster: Cluster
):
    tasks = [await store.create("demo") for _ in range(60)]
    await store.progress(tasks[0].id, 0, {"progress": 1}, text="글")
    await store.finish(tasks[0].id, 0, {"ok": True}, "/r")
    shards: Counter[int] = Counter()
    for node in primaries(cluster):
        with node:
            held = set(node.scan_iter(match="ts:{*}:task", count=1000))
            shards[node.connection_pool.connection_kwargs["port"]] = len(
                held & {keys.task(t.id) for t in tasks}
            )
            for key in held:  # every key of a task is on its task's shard
                task_id = key[len("ts:{") : -len("}:task")]
                assert node.exists(*keys.record(task_id)[:2]) == 2
    assert sum(shards.values()) == 60
    assert len(shards) == 3 and min(shards.values()) > 0, shards
    done = tasks[0].id
    owner = cluster.primary_of(keys.task(done)).client()
    with owner:
        assert owner.exists(keys.text(done), keys.result(done)) == 2


async def test_the_hub_holds_one_connection_per_shard_it_needs(
    client: httpx.AsyncClient, store: TaskStore, cluster: Cluster, web: Proc
):
    tasks = [await store.create("demo") for _ in range(30)]
    home = {t.id: cluster.primary_of(keys.task(t.id)).port for t in tasks}
    assert len(set(home.values())) == 3
    streams = [SseStream(client, f"/api/v1/tasks/{t.id}/events") for t in tasks]
    await asyncio.gather(*(s.__aenter__() for s in streams))
    try:
        await asyncio.gather(*(s.next() for s in streams))
        assert web.process is not None
        prefix = f"taskstream:web:{web.process.pid}:hub"
        for node in primaries(cluster):
            with node:
                port = node.connection_pool.connection_kwargs["port"]
                hubs = [c for c in node.client_list() if c["name"] == prefix]  # type: ignore[union-attr]
                here = sum(1 for t in tasks if home[t.id] == port)
                assert len(hubs) == 1, (port, hubs)
                # this shard's tasks, and the revocations' channel on its shard
                extra = int(cluster.primary_of(keys.channel("sessions")).port == port)
                assert int(hubs[0]["ssub"]) == here + extra
        written = [await store.finish(t.id, 0, None, "/r") for t in tasks]
        ended = await asyncio.gather(*(s.rest() for s in streams))
    finally:
        await asyncio.gather(*(s.__aexit__() for s in streams))
    assert [[e.id for e in rest] for rest in ended] == [[w.id] for w in written]


async def test_a_slot_resharded_mid_stream_its_channel_follows_it_and_nothing_is_lost(
    client: httpx.AsyncClient, store: TaskStore, cluster: Cluster
):
    task = await store.create("demo")
    source = cluster.primary_of(keys.task(task.id))
    target = next(n for n in cluster.live() if n.is_primary and n is not source)
    async with SseStream(client, f"/api/v1/tasks/{task.id}/events") as sse:
        await sse.next()
        before = [(await store.progress(task.id, 0, {"progress": p})).id for p in (10, 20)]
        assert [e.id for e in await sse.take(2)] == before
        await asyncio.to_thread(cluster.move_slot, key_slot(keys.task(task.id).encode()), target)
        assert cluster.primary_of(keys.task(task.id)) is target
        # written on the new owner: the hub must have followed the channel there
        after = [(await store.progress(task.id, 0, {"progress": p})).id for p in (30, 40)]
        done = await store.finish(task.id, 0, None, "/r")
        rest = await sse.rest()
    assert [e.id for e in rest] == [*after, done.id]


async def test_a_primary_killed_mid_stream_its_replica_takes_over_and_the_stream_ends_in_order(
    client: httpx.AsyncClient, cluster: Cluster, records: Client
):
    task_id = await start_demo(client, steps=60, stepSeconds=0.1)
    victim = cluster.primary_of(keys.task(task_id))
    async with SseStream(client, f"/api/v1/tasks/{task_id}/events") as sse:
        before = await sse.take(4)
        assert victim.process is not None
        victim.process.send_signal(signal.SIGKILL)
        rest = await sse.rest()
    try:
        assert cluster.primary_of(keys.task(task_id)) is not victim  # its replica took over
        events = before + rest
        assert events[-1].event == "completed", [e.event for e in events[-4:]]
        # in order; a gap only where a snapshot (`resync`) hands the client the whole state
        for earlier, later in zip(events, events[1:], strict=False):
            assert later.data["version"] > earlier.data["version"] or later.event == "status"
        # what the client was sent before the kill is in the log the new primary holds
        log = [eid for eid, _ in await records.xrange(keys.events(task_id))]
        assert {e.id for e in before} <= set(log)
        if not any(e.data.get("resync") for e in rest):
            await assert_no_gap(records, task_id, [e.id for e in events])
    finally:
        victim.start()  # back, as a replica of its old shard's new primary
        await asyncio.to_thread(cluster.wait_healthy)
