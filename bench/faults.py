"""The fault matrix, each fault many times: tasks running and followed over SSE, a fault,
then the invariant checked on every task and every stream.

    python -m bench.faults [--runs 5] [--tasks 12] [--only valkey-restart,worker-kill]

A deployment is two web servers (the first of two processes on one port, `--processes 2`,
the second of one) and two workers on a Valkey of its own (and, for the cluster's faults,
the task streams on a local cluster of 3 primaries and 3 replicas). Each
run starts `--tasks` demo tasks, each followed (half over SSE, half over the WebSocket) by
a client that reconnects as an EventSource would (with its last id, to the other web
process when one is gone, after `Retry-After` when refused), waits until every task is
running, injects the fault, then checks: every task ended (`stuck` counts those that did
not; `failed`, those that ended otherwise than `completed`), every stream ended with its
task (`unended`), no task ended `INTERNAL_ERROR` (`internal`), and each client's events
are the task's log after the client's first id (`lost`: events missing, `doubled`: an id
twice). A cluster's replication is asynchronous: where a killed primary took events with
it, the client is owed a `resync` snapshot, and the log is compared from there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench.common import server_env, wait_ready
from jobs.infra.connections import Client, connect_streams
from jobs.record import keys
from taskstream.embedded import Cluster, ClusterNode, Valkey, free_port
from taskstream.loadtest.report import children

ROOT = Path(__file__).resolve().parent.parent
ENDED = {"completed", "failed", "cancelled"}
BOUND_S = 120.0  # a run's tasks and streams all end within this, or count as stuck
# short leases and a short patience, so that every fault is over in seconds
ENV = {
    "TASKSTREAM_LEASE_SECONDS": "1.5",
    "TASKSTREAM_TIMEOUT_DEMO": "300",
    "TASKSTREAM_RETRY_BACKOFF_DEMO": "0.2",
    "TASKSTREAM_HEARTBEAT_SECONDS": "1",
}


@dataclass
class Deployment:
    """Two web servers (the first of two processes) and two workers, on `control` (and
    `cluster`)."""

    workdir: Path
    cluster: Cluster | None = None
    patience_s: float = 2.0  # a worker's, through an outage (short, so that one outlasts it)
    outage_s: float | None = None  # how long `valkey-outage` keeps Valkey down (3 patiences)
    control: Valkey = field(init=False)
    webs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        self.control = Valkey(self.workdir / "valkey")
        self.control.start()
        extra = ENV | {"TASKSTREAM_REDIS_PATIENCE_SECONDS": str(self.patience_s)}
        if self.cluster is not None:
            self.cluster.start()
            extra["TASKSTREAM_STREAMS_URL"] = self.cluster.url
        self.env = server_env(self.control.url, **extra)
        self.ports = [free_port(), free_port()]
        self.webs = [self._web(index) for index in range(len(self.ports))]
        self.workers = [self._process("worker"), self._process("worker")]
        for url in self.urls:
            wait_ready(url)

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def _process(self, *args: str) -> subprocess.Popen[bytes]:
        with (self.workdir / "servers.log").open("ab") as log:
            command = [sys.executable, "-m", "taskstream.cli", *args]
            return subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=log, stderr=log)

    def _web(self, index: int) -> subprocess.Popen[bytes]:
        processes = "2" if index == 0 else "1"
        return self._process("web", "--port", str(self.ports[index]), "--processes", processes)

    def restart_web(self, index: int) -> None:
        self.webs[index] = self._web(index)

    def restart_worker(self, index: int) -> None:
        self.workers[index] = self._process("worker")

    def stop(self) -> None:
        for process in [*self.webs, *self.workers]:
            process.send_signal(signal.SIGTERM)
        for process in [*self.webs, *self.workers]:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.control.stop()
        if self.cluster is not None:
            self.cluster.stop()

    def records(self) -> Client:
        """A client of the task records' store."""
        url = self.cluster.url if self.cluster is not None else self.control.url
        return connect_streams(url, "taskstream:faults")


# A fault: what it does to a deployment whose tasks are running; the first task's id names
# the shard a cluster's faults strike.
Fault = Callable[[Deployment, str], Awaitable[None]]


async def valkey_restart(deployment: Deployment, task_id: str) -> None:
    """The one Valkey stopped and started again from its append-only file."""
    await asyncio.to_thread(deployment.control.stop)
    await asyncio.to_thread(deployment.control.start)


async def valkey_pause(deployment: Deployment, task_id: str) -> None:
    """The one Valkey stopped (SIGSTOP) for longer than a request's patience, resumed."""
    process = deployment.control.process
    assert process is not None
    process.send_signal(signal.SIGSTOP)
    await asyncio.sleep(5)
    process.send_signal(signal.SIGCONT)


async def valkey_outage(deployment: Deployment, task_id: str) -> None:
    """The one Valkey down for longer than a worker's patience, then back."""
    await asyncio.to_thread(deployment.control.stop)
    await asyncio.sleep(deployment.outage_s or deployment.patience_s * 3)
    await asyncio.to_thread(deployment.control.start)


async def worker_kill(deployment: Deployment, task_id: str) -> None:
    """A worker SIGKILLed (its tasks taken over when their leases lapse), another started."""
    deployment.workers[0].kill()
    deployment.workers[0].wait()
    deployment.restart_worker(0)


async def web_kill(deployment: Deployment, task_id: str) -> None:
    """A web process SIGKILLed: its clients resume on the other; it is started again."""
    deployment.webs[0].kill()
    deployment.webs[0].wait()
    await asyncio.sleep(1)
    deployment.restart_web(0)


async def web_child_kill(deployment: Deployment, task_id: str) -> None:
    """One of the first server's two processes SIGKILLed: its clients resume on the other
    (same port) or the other server; its parent starts it again on the same socket."""
    os.kill(children(deployment.webs[0].pid)[0], signal.SIGKILL)
    async with asyncio.timeout(30):
        while len(children(deployment.webs[0].pid)) < 2:  # replaced
            await asyncio.sleep(0.2)


async def primary_kill(deployment: Deployment, task_id: str) -> None:
    """The primary of the task's shard SIGKILLed; its replica takes over; it comes back."""
    assert deployment.cluster is not None
    victim = deployment.cluster.primary_of(keys.task(task_id))
    assert victim.process is not None
    victim.process.kill()
    victim.process.wait()
    await asyncio.sleep(4)  # a replica is promoted after about two node timeouts
    await asyncio.to_thread(victim.start)
    await asyncio.to_thread(deployment.cluster.wait_healthy)


async def failover(deployment: Deployment, task_id: str) -> None:
    """The replica of the task's shard promoted by `CLUSTER FAILOVER` (a planned switch)."""
    cluster = deployment.cluster
    assert cluster is not None
    primary = cluster.primary_of(keys.task(task_id))
    replica = next(n for n in cluster.live() if _replica_of(n) == primary.port)
    replica.call("CLUSTER", "FAILOVER")
    await asyncio.to_thread(cluster.wait_healthy)


def _replica_of(node: ClusterNode) -> int | None:
    """The port of the primary `node` replicates (None for a primary)."""
    with node.client() as client:
        info = client.info("replication")
    return int(info["master_port"]) if info["role"] == "slave" else None


FAULTS: dict[str, tuple[bool, Fault]] = {  # name: (on a cluster, the fault)
    "valkey-restart": (False, valkey_restart),
    "valkey-pause": (False, valkey_pause),
    "valkey-outage": (False, valkey_outage),
    "worker-kill": (False, worker_kill),
    "web-kill": (False, web_kill),
    "web-child-kill": (False, web_child_kill),
    "primary-kill": (True, primary_kill),
    "failover": (True, failover),
}


@dataclass
class Tally:
    runs: int = 0
    tasks: int = 0
    failed: int = 0  # ended, but not completed (WORKER_LOST when no attempt was left)
    stuck: int = 0
    unended: int = 0
    internal: int = 0
    lost: int = 0
    doubled: int = 0

    @property
    def clean(self) -> bool:
        return not (self.stuck or self.unended or self.internal or self.lost or self.doubled)


@dataclass
class Followed:
    """What one client received: (id, type, data) of each event, and how it ended."""

    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    ended: bool = False


async def follow(urls: list[str], token: str, task_id: str, seen: Followed) -> None:
    """Follow the task to its end as an EventSource would, over `urls` in turn."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(10, read=30)) as http:
        turn = 0
        while True:
            url = f"{urls[turn % len(urls)]}/api/v1/tasks/{task_id}/events"
            last = {"Last-Event-ID": seen.events[-1][0]} if seen.events else {}
            try:
                async with http.stream("GET", url, headers=last) as response:
                    if response.status_code == 204:
                        seen.ended = True
                        return
                    if response.status_code in (429, 503):  # come back when told
                        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                        continue
                    if response.status_code != 200:  # refused for good: never ends
                        raise RuntimeError(f"{task_id}: {(await response.aread()).decode()}")
                    if await _read(response, seen):
                        return
            except httpx.HTTPError:
                turn += 1  # that process may be gone: the next one
                await asyncio.sleep(0.2)


async def follow_ws(urls: list[str], token: str, task_id: str, seen: Followed) -> None:
    """The same over the WebSocket: subscribe with the last id, again after every close."""
    headers = {"Authorization": f"Bearer {token}"}
    turn = 0
    while True:
        url = urls[turn % len(urls)].replace("http", "ws", 1) + "/api/v1/ws"
        try:
            async with websockets.connect(url, additional_headers=headers) as socket:
                subscribe = {"type": "subscribe", "taskId": task_id}
                if seen.events:
                    subscribe["lastEventId"] = seen.events[-1][0]
                await socket.send(json.dumps(subscribe))
                async for raw in socket:
                    frame = json.loads(raw)
                    if frame.get("id"):
                        seen.events.append((frame["id"], frame["event"], frame["data"]))
                    elif frame.get("event") == "unsubscribed":  # after the task's end
                        seen.ended = frame.get("reason") == "ended"
                        return
                    elif frame.get("event") == "error":
                        return  # never ended
        except (OSError, websockets.WebSocketException):
            pass
        turn += 1  # closed (told to reconnect), or that process is gone: the next one
        await asyncio.sleep(0.2)


async def _read(response: httpx.Response, seen: Followed) -> bool:
    """The stream's events into `seen`; True once the task's end has come."""
    event: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line:
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")
            continue
        if "data" in event and event.get("id"):
            data = json.loads(event["data"])
            seen.events.append((event["id"], event.get("event", "message"), data))
            if data.get("status") in ENDED and event.get("event") != "progress":
                seen.ended = True
                return True
        event = {}
    return False


async def run_once(deployment: Deployment, fault: Fault, count: int, tally: Tally) -> None:
    """One run: `count` tasks, the fault under them, the invariant checked into `tally`."""
    from taskstream.loadtest import sign_up

    urls = deployment.urls
    token = await sign_up(urls[1])
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=urls[1], headers=headers, timeout=30) as http:
        body = {"steps": 50, "stepSeconds": 0.1}
        ids = [
            (await http.post("/api/v1/demo/tasks", json=body)).json()["data"]["taskId"]
            for _ in range(count)
        ]
        seen = {task_id: Followed() for task_id in ids}
        following = [  # every other task over the WebSocket
            asyncio.create_task((follow_ws if i % 2 else follow)(urls, token, t, seen[t]))
            for i, t in enumerate(ids)
        ]
        async with asyncio.timeout(30):  # every task running before the fault
            while not all(_running(s) for s in seen.values()):
                await asyncio.sleep(0.05)
        await fault(deployment, ids[0])
        await asyncio.wait(following, timeout=BOUND_S)
        for task in following:  # a client refused for good counts as `unended`
            if task.done() and task.exception() is not None:
                print(task.exception(), file=sys.stderr)
            task.cancel()
        ends = [await _status(http, t) for t in ids]
    records = deployment.records()
    try:
        for task_id, end in zip(ids, ends, strict=True):
            log = [eid for eid, _ in await records.xrange(keys.events(task_id))]
            _check(tally, seen[task_id], end, log)
    finally:
        await records.aclose()
    tally.runs += 1
    tally.tasks += count


def _running(seen: Followed) -> bool:
    return any(data.get("progress", 0) >= 10 for _, _, data in seen.events)


async def _status(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    for _ in range(30):
        response = await http.get(f"/api/v1/tasks/{task_id}/status")
        if response.status_code == 200:
            data: dict[str, Any] = response.json()["data"]
            return data
        await asyncio.sleep(1)
    return {}


def _check(tally: Tally, seen: Followed, end: dict[str, Any], log: list[str]) -> None:
    tally.stuck += end.get("status") not in ENDED
    if end.get("status") in ENDED - {"completed"}:
        tally.failed += 1
        print("  ended", end.get("status"), end.get("errorCode"), end.get("errorMessage"),
              end.get("taskId"), file=sys.stderr)  # fmt: skip
    tally.unended += not seen.ended
    tally.internal += end.get("errorCode") == "INTERNAL_ERROR"
    ids = [eid for eid, _, _ in seen.events]
    tally.doubled += len(ids) - len(set(ids))
    # from the last point the client was handed the whole state: its first event, or a
    # `resync` snapshot (events a killed primary took with it)
    start = max((i for i, (_, _, d) in enumerate(seen.events) if d.get("resync")), default=0)
    if not ids or ids[start] not in log:
        tally.lost += 1
        return
    expected = log[log.index(ids[start]) + 1 :]
    received = ids[start + 1 :]
    tally.lost += len(set(expected) - set(received))


async def matrix(
    names: list[str],
    runs: int,
    count: int,
    workdir: Path,
    patience_s: float = 2.0,
    outage_s: float | None = None,
) -> dict[str, Tally]:
    """Every fault of `names`, `runs` times each, on a deployment of its own."""
    found: dict[str, Tally] = {}
    for name in names:
        on_cluster, fault = FAULTS[name]
        cluster = Cluster(workdir / name / "cluster") if on_cluster else None
        layout = Deployment(workdir / name, cluster, patience_s, outage_s)
        (workdir / name).mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(layout.start)
        tally = found[name] = Tally()
        try:
            for _ in range(runs):
                await run_once(layout, fault, count, tally)
                print(name, tally, file=sys.stderr, flush=True)
        finally:
            await asyncio.to_thread(layout.stop)
    return found


def render(found: dict[str, Tally]) -> str:
    columns = [f.name for f in fields(Tally)]
    lines = ["| fault | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, tally in found.items():
        lines.append(f"| {name} | " + " | ".join(str(getattr(tally, c)) for c in columns) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--only", help="comma-separated faults: " + ", ".join(FAULTS))
    parser.add_argument("--patience", type=float, default=2.0, help="a worker's, in s")
    parser.add_argument("--outage", type=float, help="valkey-outage's length (3 patiences)")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(FAULTS)
    with tempfile.TemporaryDirectory(prefix="taskstream-faults-") as workdir:
        found = asyncio.run(
            matrix(
                names,
                args.runs,
                args.tasks,
                Path(workdir),
                patience_s=args.patience,
                outage_s=args.outage,
            )
        )
    print(render(found))
    sys.exit(0 if all(t.clean for t in found.values()) else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
