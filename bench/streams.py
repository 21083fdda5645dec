"""Benchmark: N concurrent SSE streams on one web process.

    python -m bench.streams --streams 2000 --rate 5000 --seconds 10

Starts Valkey and one web process, creates N tasks, opens N SSE streams from a separate
client process (raw asyncio sockets, uvloop), then publishes progress events through the
same atomic script the workers use, at `--rate` events/s spread over all tasks, and ends
every task `completed`. Prints: events sent/received/lost/duplicated, publish→receive
latency (the stream id's timestamp is the publish time, both on this machine), the web
process's RSS per idle stream, and its Redis connections with the streams open.

Events are published by this process, not by ARQ workers, so that the figure is the web
process's delivery, not a worker's throughput. With `--baseline`, the same run is then
made against the minimal shared-hub server (`bench/baseline.py`), and each figure is also
reported as a ratio to its own.
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
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import pin, ready_user, server_env, wait_listening
from jobs.config import Settings
from jobs.connections import connect
from jobs.record.tasks import TaskStore
from taskstream.embedded import Valkey, free_port
from taskstream.loadtest.report import cpu_seconds, percentiles, rss_kib

ROOT = Path(__file__).resolve().parent.parent


# --- the client process -------------------------------------------------------------------


async def _follow(host: str, port: int, path: str, token: str, stats: dict[str, Any]) -> None:
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    # HTTP/1.0: the body is the raw stream, ended by the server's close
    writer.write(
        f"GET {path} HTTP/1.0\r\nHost: {host}\r\n{auth}Accept: text/event-stream\r\n\r\n".encode()
    )
    status_line = await reader.readline()
    if b" 200 " not in status_line:
        stats["failed"] += 1
        writer.close()
        return
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    seen: set[bytes] = set()
    connected = False
    event_id = b""
    latencies: list[float] = stats["latencies"]
    while line := await reader.readline():
        line = line.rstrip(b"\r\n")
        if line.startswith(b"id: "):
            event_id = line[4:]
            continue
        if not line.startswith(b"event: "):
            continue
        if not connected:  # the first event: Taskstream's snapshot, the baseline's `ready`
            connected = True
            stats["connected"] += 1
            continue
        if event_id in seen:
            stats["duplicates"] += 1
        seen.add(event_id)
        stats["received"] += 1
        latency = time.time() * 1000 - int(event_id.split(b"-")[0])
        if line == b"event: completed":
            stats["completion_latencies"].append(latency)
            break
        latencies.append(latency)
    writer.close()


async def _clients(host: str, port: int, token: str, paths: list[str], ramp: float) -> None:
    stats: dict[str, Any] = {
        "connected": 0, "failed": 0, "received": 0, "duplicates": 0, "latencies": [],
        "completion_latencies": [],
    }  # fmt: skip
    pause = ramp / max(1, len(paths))
    followers = []
    for path in paths:
        followers.append(asyncio.create_task(_follow(host, port, path, token, stats)))
        await asyncio.sleep(pause)
    while stats["connected"] + stats["failed"] < len(paths):
        await asyncio.sleep(0.05)
    counts = {k: v for k, v in stats.items() if not isinstance(v, list)}
    print(json.dumps({"phase": "connected", **counts}), flush=True)
    await asyncio.gather(*followers, return_exceptions=True)
    for name in ("latencies", "completion_latencies"):
        stats[name.replace("latencies", "latency_ms")] = percentiles(stats.pop(name))
    print(json.dumps({"phase": "done", **stats}), flush=True)


def run_clients(args: argparse.Namespace) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    paths = Path(args.paths).read_text().split()
    asyncio.run(_clients(args.host, args.port, args.token, paths, args.ramp))


# --- the orchestrator -----------------------------------------------------------------------


async def _publish(
    store: TaskStore, ids: list[str], per_task: int, rate: float
) -> tuple[int, float]:
    """Write `per_task` progress events to every task, then end it `completed`, all at
    `rate` events/s in all (completions included, so streams end at the same pace)."""
    sent = 0
    started = time.monotonic()
    batch = 200
    for step in range(1, per_task + 2):
        for i in range(0, len(ids), batch):
            chunk = ids[i : i + batch]
            await asyncio.gather(
                *(
                    store.progress(task_id, 0, {"progress": step})
                    if step <= per_task
                    else store.finish(task_id, 0, None, "/r")
                    for task_id in chunk
                )
            )
            sent += len(chunk)
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
    return sent, time.monotonic() - started


async def _one_run(
    server: tuple[int, int, str, str],
    args: argparse.Namespace,
    store: TaskStore,
    owner: str,
    workdir: Path,
) -> dict[str, Any]:
    """Streams opened over `--ramp` on the server `(pid, port, token, path format)`, then
    the events published and every task ended; the figures as the client saw them."""
    pid, port, token, path_format = server
    ids = [(await store.create("demo", owner=owner)).id for _ in range(args.streams)]
    paths_file = workdir / f"{port}.paths"
    paths_file.write_text("\n".join(path_format.format(i) for i in ids))
    before = rss_kib(pid)
    clients = subprocess.Popen(
        [sys.executable, "-m", "bench.streams", "clients", "--port", str(port),
         "--paths", str(paths_file), "--ramp", str(args.ramp), "--token", token],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert clients.stdout is not None
        if args.cpus:
            pin([pid], [clients.pid])
        connected = json.loads(await asyncio.to_thread(clients.stdout.readline))
        await asyncio.sleep(1)  # let the server settle before reading its memory
        idle = rss_kib(pid)
        per_task = max(1, round(args.rate * args.seconds / len(ids)))
        cpu_before = cpu_seconds(pid), cpu_seconds(clients.pid)
        sent, elapsed = await _publish(store, ids, per_task, args.rate)
        server_cpu = (cpu_seconds(pid) - cpu_before[0]) / elapsed
        client_cpu = (cpu_seconds(clients.pid) - cpu_before[1]) / elapsed
        done = json.loads(await asyncio.to_thread(clients.stdout.readline))
    finally:
        if clients.poll() is None:
            clients.kill()
    return {
        "connected": connected["connected"],
        "failed": connected["failed"],
        "events_sent": sent,
        "events_received": done["received"],
        "events_lost": sent - done["received"],
        "duplicates": done["duplicates"],
        "publish_rate": round(sent / elapsed),
        "progress_latency_ms": done["latency_ms"],
        "completion_latency_ms": done["completion_latency_ms"],
        "rss_per_idle_stream_kib": round((idle - before) / args.streams, 1),
        "server_cpu_percent_while_publishing": round(server_cpu * 100),
        "client_cpu_percent_while_publishing": round(client_cpu * 100),
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="taskstream-bench-"))
    valkey = Valkey(workdir / "valkey")
    valkey.start()
    port, base_port = free_port(), free_port()
    env = server_env(valkey.url, TASKSTREAM_HEARTBEAT_SECONDS="15")
    log = (workdir / "web.log").open("wb")
    web = subprocess.Popen(
        [sys.executable, "-m", "taskstream.cli", "web", "--port", str(port)],
        env=env, cwd=ROOT, stdout=log, stderr=log,
    )  # fmt: skip
    servers = [web]
    if args.baseline:
        servers.append(
            subprocess.Popen(
                [sys.executable, "-m", "bench.baseline", "--port", str(base_port)],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )  # fmt: skip
        )
    redis = connect(valkey.url, "taskstream:bench", max_connections=64)
    assert valkey.process is not None
    # the client processes, started later, are pinned as they start
    pinned = pin([p.pid for p in servers], [valkey.process.pid, os.getpid()]) if args.cpus else ""
    try:
        token, owner = await ready_user(f"http://127.0.0.1:{port}")
        settings = replace(Settings.from_env({"REDIS_URL": valkey.url}), stream_maxlen=1000)
        store = TaskStore(redis, settings)
        prefix = f"taskstream:web:{web.pid}"
        result: dict[str, Any] = {"streams": args.streams, "pinned": pinned or "no"}
        result["taskstream"] = await _one_run(
            (web.pid, port, token, "/api/v1/tasks/{}/events"), args, store, owner, workdir
        )
        result["taskstream"]["web_redis_connections"] = sum(
            1 for c in await redis.client_list() if c["name"].startswith(prefix)
        )
        if args.baseline:
            await wait_listening(base_port)
            base = (servers[1].pid, base_port, "", "/events/{}")
            result["baseline"] = await _one_run(base, args, store, owner, workdir)
            result["ratio"] = ratios(result["taskstream"], result["baseline"])
        return result
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            server.wait(30)
        await redis.aclose()
        valkey.stop()


def ratios(ours: dict[str, Any], base: dict[str, Any]) -> dict[str, float | None]:
    """Taskstream's figure over the baseline's, for the figures both have."""

    def ratio(a: Any, b: Any) -> float | None:
        return (
            round(a / b, 2)
            if isinstance(a, int | float) and isinstance(b, int | float) and b
            else None
        )

    return {
        "progress_p99": ratio(
            ours["progress_latency_ms"].get("p99"), base["progress_latency_ms"].get("p99")
        ),
        "completion_p99": ratio(
            ours["completion_latency_ms"].get("p99"), base["completion_latency_ms"].get("p99")
        ),
        "rss_per_idle_stream": ratio(
            ours["rss_per_idle_stream_kib"], base["rss_per_idle_stream_kib"]
        ),
        "server_cpu": ratio(
            ours["server_cpu_percent_while_publishing"], base["server_cpu_percent_while_publishing"]
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.streams")
    sub = parser.add_subparsers(dest="command")
    c = sub.add_parser("clients")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--paths", required=True)
    c.add_argument("--ramp", type=float, default=5)
    c.add_argument("--token", default="")
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=5000, help="events/s, all tasks together")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--ramp", type=float, default=5, help="seconds to open all streams")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="the same run against the minimal shared-hub server (bench.baseline) too",
    )
    parser.add_argument(
        "--cpus",
        action="store_true",
        help="the servers on a core of their own (bench.common.pin)",
    )
    args = parser.parse_args()
    if args.command == "clients":
        run_clients(args)
        return
    if not 1 <= args.streams <= 20000:
        parser.error("--streams must be between 1 and 20000")
    result = asyncio.run(bench(args))
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>26}: {value}")


if __name__ == "__main__":
    main()
