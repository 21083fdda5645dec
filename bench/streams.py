"""Benchmark: N concurrent SSE streams on one web process (or `--processes` on one port).

    python -m bench.streams --streams 2000 --rate 5000 --seconds 10
    python -m bench.streams --streams 30000 --processes 2 --cap 15500 --extra 2000

Starts Valkey and the web process(es), creates N tasks, opens N SSE streams from separate
client processes (raw asyncio sockets, uvloop; as many as their open-files limits need;
with `--extra K`, K more streams asked for at once once all are open, past the cap that
`--cap` sets for each process: how many were refused 503 and how soon), then publishes
progress events through the same atomic script the workers use, at `--rate` events/s
spread over all tasks, and ends every task `completed`. Prints: events
sent/received/lost/duplicated, publish→receive latency (the stream id's timestamp is the
publish time, both on this machine), the web process's RSS per idle stream, and its Redis
connections with the streams open.

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
from jobs.infra.config import Settings
from jobs.infra.connections import connect
from jobs.infra.openfiles import raise_open_files
from jobs.record.tasks import TaskStore
from taskstream.embedded import Valkey, free_port
from taskstream.loadtest.clients import local_address
from taskstream.loadtest.report import (
    cpu_seconds,
    family,
    family_cpu_seconds,
    family_rss_kib,
    percentiles,
)

CLIENT_FILES_RESERVE = 256  # a client process's descriptors beside its streams

ROOT = Path(__file__).resolve().parent.parent


# --- the client process -------------------------------------------------------------------


async def _follow(host: str, port: int, path: str, token: str, stats: dict[str, Any]) -> None:
    try:
        reader, writer = await asyncio.open_connection(
            host, port, limit=1 << 20, local_addr=local_address(host)
        )
    except OSError:
        stats["failed"] += 1
        return
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
    print(json.dumps({"phase": "done", **stats}), flush=True)  # latencies raw: merged later


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
    """Streams opened over `--ramp` on the server `(pid, port, token, path format)` (a
    supervisor's pid counts its web processes), from as many client processes as their
    open-files limits need; then `--extra` more at once, past the cap; then the events
    published and every task ended: the figures as the clients saw them."""
    pid, port, token, path_format = server
    ids = [(await store.create("demo", owner=owner)).id for _ in range(args.streams)]
    paths = [path_format.format(i) for i in ids]
    per_process = max(1, raise_open_files() - CLIENT_FILES_RESERVE)
    shares = [paths[i : i + per_process] for i in range(0, len(paths), per_process)]
    before = family_rss_kib(pid)
    clients = []
    for k, share in enumerate(shares):
        paths_file = workdir / f"{port}-{k}.paths"
        paths_file.write_text("\n".join(share))
        clients.append(subprocess.Popen(
            [sys.executable, "-m", "bench.streams", "clients", "--port", str(port),
             "--paths", str(paths_file), "--ramp", str(args.ramp), "--token", token],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        ))  # fmt: skip
    try:
        if args.cpus:
            pin(family(pid), [c.pid for c in clients], args.processes)
        connected = _merge(await asyncio.gather(*(_line(c) for c in clients)))
        past_cap = await _knock(port, paths[0], token, args.extra) if args.extra else None
        await asyncio.sleep(1)  # let the server settle before reading its memory
        idle = family_rss_kib(pid)
        per_task = max(1, round(args.rate * args.seconds / len(ids)))
        cpu_before = family_cpu_seconds(pid), sum(cpu_seconds(c.pid) for c in clients)
        sent, elapsed = await _publish(store, ids, per_task, args.rate)
        server_cpu = (family_cpu_seconds(pid) - cpu_before[0]) / elapsed
        client_cpu = (sum(cpu_seconds(c.pid) for c in clients) - cpu_before[1]) / elapsed
        done = _merge(await asyncio.gather(*(_line(c) for c in clients)))
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
    return {
        "connected": connected["connected"],
        "failed": connected["failed"],
        **({"past_the_cap": past_cap} if past_cap is not None else {}),
        "client_processes": len(clients),
        "events_sent": sent,
        "events_received": done["received"],
        "events_lost": sent - done["received"],
        "duplicates": done["duplicates"],
        "publish_rate": round(sent / elapsed),
        "progress_latency_ms": percentiles(done["latencies"]),
        "completion_latency_ms": percentiles(done["completion_latencies"]),
        "rss_per_idle_stream_kib": round((idle - before) / args.streams, 1),
        "server_cpu_percent_while_publishing": round(server_cpu * 100),
        "client_cpu_percent_while_publishing": round(client_cpu * 100),
    }


async def _line(client: subprocess.Popen[str]) -> dict[str, Any]:
    """The client process's next report line."""
    assert client.stdout is not None
    line = await asyncio.to_thread(client.stdout.readline)
    if not line:
        raise RuntimeError(f"a client process ended (exit {client.wait()})")
    report: dict[str, Any] = json.loads(line)
    return report


def _merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The client processes' reports as one: counts added, latencies put together."""
    merged: dict[str, Any] = {}
    for report in reports:
        for key, value in report.items():
            if isinstance(value, int | list) and not isinstance(value, bool):
                merged[key] = merged.get(key, type(value)()) + value
    return merged


async def _knock(port: int, path: str, token: str, count: int) -> dict[str, Any]:
    """`count` more streams asked for at once, past the cap: how each was answered, and
    how soon the refusals came (they must not hang). Every one is closed again."""

    async def ask() -> tuple[int, float]:
        began = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=local_address("127.0.0.1")
            )
        except OSError:
            return 0, time.monotonic() - began
        try:
            writer.write(
                f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            status = await asyncio.wait_for(reader.readline(), 30)
        except (OSError, TimeoutError):
            status = b""
        finally:
            writer.close()
        code = int(status.split()[1]) if len(status.split()) > 1 else 0
        return code, time.monotonic() - began

    answers = await asyncio.gather(*(ask() for _ in range(count)))
    refused = [seconds * 1000 for code, seconds in answers if code == 503]
    return {
        "asked": count,
        "admitted": sum(code == 200 for code, _ in answers),
        "refused_503": len(refused),
        "unanswered": sum(code == 0 for code, _ in answers),
        "refusal_ms": percentiles(refused),
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="taskstream-bench-"))
    valkey = Valkey(workdir / "valkey")
    valkey.start()
    port, base_port = free_port(), free_port()
    env = server_env(
        valkey.url, TASKSTREAM_HEARTBEAT_SECONDS="15", TASKSTREAM_WEB_PROCESSES=str(args.processes),
        **({"TASKSTREAM_MAX_STREAMS": str(args.cap)} if args.cap else {}),
    )  # fmt: skip
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
    try:
        token, owner = await ready_user(f"http://127.0.0.1:{port}")
        servers_pids = [pid for server in servers for pid in family(server.pid)]
        others = [valkey.process.pid, os.getpid()]
        pinned = pin(servers_pids, others, args.processes) if args.cpus else ""
        settings = replace(Settings.from_env({"REDIS_URL": valkey.url}), stream_maxlen=1000)
        store = TaskStore(redis, settings)
        prefixes = tuple(f"taskstream:web:{pid}" for pid in family(web.pid))
        result: dict[str, Any] = {
            "streams": args.streams, "web_processes": args.processes, "pinned": pinned or "no",
        }  # fmt: skip
        result["taskstream"] = await _one_run(
            (web.pid, port, token, "/api/v1/tasks/{}/events"), args, store, owner, workdir
        )
        result["taskstream"]["web_redis_connections"] = sum(
            1 for c in await redis.client_list() if c["name"].startswith(prefixes)
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
        "--processes", type=int, default=1, help="web processes on the one port (web --processes)"
    )
    parser.add_argument("--cap", type=int, help="TASKSTREAM_MAX_STREAMS, each web process's cap")
    parser.add_argument(
        "--extra", type=int, default=0, help="streams asked for at once once all are open"
    )
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
    if not 1 <= args.streams <= 200_000 or args.processes < 1:
        parser.error("--streams must be between 1 and 200000, --processes at least 1")
    result = asyncio.run(bench(args))
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>26}: {value}")


if __name__ == "__main__":
    main()
