"""Redis high availability: a primary, a replica and a sentinel from the Valkey binary;
the primary dies mid-stream, the sentinel promotes the replica, and the client's stream
goes on to the task's end with nothing it cannot recover."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis

from taskstream.embedded import Sentinel, Valkey
from tests.support import WAIT, Proc, SseStream, signup, start_demo


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[Sentinel]:
    primary = Valkey(tmp_path / "primary")
    replica = Valkey(tmp_path / "replica", replica_of=primary)
    watcher = Sentinel(tmp_path / "sentinel", primary)
    for server in (primary, replica, watcher):
        server.start()
    replica.wait_in_sync()  # else a fail-over would promote an empty replica
    yield watcher
    for server in (watcher, replica, primary):
        server.stop()


def current_primary(watcher: Sentinel) -> tuple[str, int]:
    with Redis(host=watcher.host, port=watcher.port, decode_responses=True) as client:
        host, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", watcher.master)
        return host, int(port)


async def test_a_fail_over_mid_stream_ends_with_the_task_complete_and_its_events_in_order(
    sentinel: Sentinel, spawn: Callable[..., Proc], env: dict[str, str]
):
    ha = {**env, "REDIS_URL": sentinel.url, "TASKSTREAM_QUEUE": "taskstream:test:sentinel",
          "TASKSTREAM_TIMEOUT_DEMO": "60"}  # fmt: skip
    web = spawn("web", ha)
    worker = spawn("worker", ha)
    try:
        async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
            user = await signup(http)
            http.headers.update(user.headers)
            task_id = await start_demo(http, steps=60, stepSeconds=0.1)
            before = current_primary(sentinel)
            async with SseStream(http, f"/api/v1/tasks/{task_id}/events") as sse:
                first = await sse.take(4)
                sentinel.primary.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
                rest = await sse.rest()
            assert current_primary(sentinel) != before  # the replica was promoted
        events = first + rest
        assert events[-1].event == "completed", [e.event for e in events[-4:]]
        versions = [e.data["version"] for e in events]
        # in order; a gap only where a snapshot (`resync`) hands the client the whole state
        for earlier, later in zip(events, events[1:], strict=False):
            assert later.data["version"] > earlier.data["version"] or later.event == "status"
        assert versions == sorted(versions)
    finally:
        web.stop()
        worker.stop()
