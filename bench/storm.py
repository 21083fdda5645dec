"""Benchmark: a connection storm, N authenticated SSE streams opened at once.

    python -m bench.storm --streams 5000

A web deploy or a network blip reconnects every client at once, so how fast a process
takes streams decides how many it can hold. Starts Valkey, one Taskstream web process and
the minimal shared-hub server (`bench/baseline.py`) side by side; for each, a separate
client process opens N streams at once (raw sockets) and times each until its first
event (Taskstream: the task's snapshot; the baseline: `ready`). Then it reads each
server's CPU seconds spent per open, its RSS per open stream, and the time and CPU to
close them all. Runs alternate between the two servers (`--repeat`), and every figure is
reported beside its ratio to the baseline's in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import pin, ready_user, server_env, wait_listening
from jobs.infra.config import Settings
from jobs.infra.connections import connect
from jobs.record.tasks import TaskStore
from taskstream.embedded import Valkey, free_port
from taskstream.loadtest.report import cpu_seconds, percentiles, rss_kib

ROOT = Path(__file__).resolve().parent.parent


# --- the client process -------------------------------------------------------------------


async def _open(host: str, port: int, path: str, token: str) -> tuple[float, Any]:
    """One stream, until its first event: (seconds, writer) or raises."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Accept: text/event-stream\r\n\r\n".encode()
    )
    status = await reader.readline()
    if b" 200 " not in status:
        writer.close()
        raise RuntimeError(status.decode(errors="replace").strip())
    while True:
        line = await reader.readline()
        if not line:
            raise RuntimeError("closed before the first event")
        if line.startswith(b"event:") or b"event: " in line:
            return time.monotonic() - started, (reader, writer)


async def _open_ws(host: str, port: int, task_id: str, token: str) -> tuple[float, Any]:
    """One WebSocket subscribed to one task, until the task's first event."""
    import websockets

    started = time.monotonic()
    socket = await websockets.connect(
        f"ws://{host}:{port}/api/v1/ws",
        additional_headers={"Authorization": f"Bearer {token}"},
        ping_interval=None,
        max_queue=16,
        open_timeout=120,
    )
    await socket.send(json.dumps({"type": "subscribe", "taskId": task_id}))
    while True:
        frame = await socket.recv()
        if isinstance(frame, str) and frame.startswith('{"id"'):
            return time.monotonic() - started, socket


async def _storm(host: str, port: int, paths: list[str], token: str, ws: bool) -> None:
    started = time.monotonic()
    opening = (_open_ws(host, port, p, token) if ws else _open(host, port, p, token) for p in paths)
    results = await asyncio.gather(*opening, return_exceptions=True)
    elapsed = time.monotonic() - started
    opened = [r for r in results if not isinstance(r, BaseException)]
    errors = [str(r) for r in results if isinstance(r, BaseException)]
    print(
        json.dumps(
            {
                "phase": "connected",
                "connected": len(opened),
                "failed": len(errors),
                "first_error": errors[0] if errors else None,
                "all_connected_s": round(elapsed, 3),
                "open_ms": percentiles([seconds * 1000 for seconds, _ in opened]),
            }
        ),
        flush=True,
    )
    await asyncio.to_thread(sys.stdin.readline)  # hold them open until told
    started = time.monotonic()
    if ws:
        await asyncio.gather(*(socket.close() for _, socket in opened), return_exceptions=True)
    else:
        for _, (_, writer) in opened:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for _, (_, w) in opened), return_exceptions=True)
    print(json.dumps({"phase": "closed", "close_s": round(time.monotonic() - started, 3)}))


def run_clients(args: argparse.Namespace) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    paths = Path(args.paths).read_text().split()
    asyncio.run(_storm(args.host, args.port, paths, args.token, args.transport == "ws"))


# --- the orchestrator -----------------------------------------------------------------------


async def _one_storm(
    pid: int, port: int, paths_file: Path, token: str, transport: str, profile: str | None = None
) -> dict[str, Any]:
    """Open every path at once against the server `pid` on `port`, then close them all;
    with `profile`, py-spy samples the server meanwhile (collapsed stacks to that file)."""
    n = len(paths_file.read_text().split())
    spy = None
    if profile:
        spy = subprocess.Popen(
            ["py-spy", "record", "-p", str(pid), "-o", profile, "-f", "raw", "-r", "500"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(1)
    idle_rss, idle_cpu = rss_kib(pid), cpu_seconds(pid)
    clients = subprocess.Popen(
        [sys.executable, "-m", "bench.storm", "clients", "--port", str(port),
         "--paths", str(paths_file), "--token", token, "--transport", transport],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert clients.stdout is not None and clients.stdin is not None
    connected = json.loads(await asyncio.to_thread(clients.stdout.readline))
    open_cpu = cpu_seconds(pid) - idle_cpu
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
    await asyncio.sleep(2)  # let the server settle before reading its memory
    held_rss, before_close = rss_kib(pid), cpu_seconds(pid)
    clients.stdin.write("close\n")
    clients.stdin.flush()
    closed = json.loads(await asyncio.to_thread(clients.stdout.readline))
    await asyncio.sleep(1)  # the server notices the closes after the client does
    clients.wait(30)
    return {
        **{k: v for k, v in connected.items() if k != "phase"},
        "cpu_ms_per_open": round(open_cpu * 1000 / n, 3),
        "rss_kib_per_stream": round((held_rss - idle_rss) / n, 1),
        "close_s": closed["close_s"],
        "cpu_ms_per_close": round((cpu_seconds(pid) - before_close) * 1000 / n, 3),
    }


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=out)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="taskstream-storm-"))
    valkey = Valkey(workdir / "valkey")
    valkey.start()
    ours_port, base_port = free_port(), free_port()
    env = server_env(valkey.url, TASKSTREAM_MAX_STREAMS="100000")
    ours = _start(
        [sys.executable, "-m", "taskstream.cli", "web", "--port", str(ours_port),
         "--backlog", str(args.backlog)],
        env, workdir / "web.log",
    )  # fmt: skip
    baseline = _start(
        [sys.executable, "-m", "bench.baseline", "--port", str(base_port),
         "--backlog", str(args.backlog)],
        env, workdir / "baseline.log",
    )  # fmt: skip
    redis = connect(valkey.url, "taskstream:bench", max_connections=64)
    assert valkey.process is not None
    # the client processes, started later, inherit this process's cores
    pinned = pin([ours.pid, baseline.pid], [valkey.process.pid, os.getpid()]) if args.cpus else ""
    try:
        token, owner = await ready_user(f"http://127.0.0.1:{ours_port}")
        await wait_listening(base_port)
        store = TaskStore(redis, Settings.from_env({"REDIS_URL": valkey.url}))
        ids = [(await store.create("demo", owner=owner)).id for _ in range(args.streams)]
        files = {}
        ours_path = "{}" if args.transport == "ws" else "/api/v1/tasks/{}/events"
        for name, prefix in (("taskstream", ours_path), ("baseline", "/events/{}")):
            files[name] = workdir / f"{name}.paths"
            files[name].write_text("\n".join(prefix.format(i) for i in ids))
        servers = {
            "taskstream": (ours.pid, ours_port, token),
            "baseline": (baseline.pid, base_port, ""),
        }
        runs: dict[str, list[dict[str, Any]]] = {"taskstream": [], "baseline": []}
        for _ in range(args.repeat):
            for name, (pid, port, auth) in servers.items():
                profile = f"{args.profile}.{name}.txt" if args.profile else None
                transport = args.transport if name == "taskstream" else "sse"
                run = await _one_storm(pid, port, files[name], auth, transport, profile)
                runs[name].append(run)
        return {"pinned": pinned or "no", **_summary(args.streams, runs)}
    finally:
        for proc in (ours, baseline):
            proc.terminate()
            proc.wait(30)
        await redis.aclose()
        valkey.stop()


def _summary(n: int, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians over the runs (memory: the first run), and Taskstream's figures as ratios
    to the baseline's."""
    keys = (
        "all_connected_s",
        "cpu_ms_per_open",
        "rss_kib_per_stream",
        "close_s",
        "cpu_ms_per_close",
    )
    medians = {
        name: {k: statistics.median(r[k] for r in rs) for k in keys} for name, rs in runs.items()
    }
    for name, rs in runs.items():
        # memory: the first run's (a fresh process); later runs reuse what the first freed
        medians[name]["rss_kib_per_stream"] = rs[0]["rss_kib_per_stream"]
    ours, base = medians["taskstream"], medians["baseline"]
    return {
        "streams": n,
        "runs": len(runs["taskstream"]),
        "failed": {name: sum(r["failed"] for r in rs) for name, rs in runs.items()},
        **{
            k: {
                "taskstream": round(ours[k], 3),
                "baseline": round(base[k], 3),
                "ratio": round(ours[k] / base[k], 2) if base[k] else None,
            }
            for k in keys
        },
        "opens_per_cpu_second": {
            "taskstream": round(1000 / ours["cpu_ms_per_open"])
            if ours["cpu_ms_per_open"]
            else None,
            "baseline": round(1000 / base["cpu_ms_per_open"]) if base["cpu_ms_per_open"] else None,
        },
        "open_ms_taskstream_last_run": runs["taskstream"][-1]["open_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.storm")
    sub = parser.add_subparsers(dest="command")
    c = sub.add_parser("clients")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--paths", required=True)
    c.add_argument("--token", default="")
    c.add_argument("--transport", choices=["sse", "ws"], default="sse")
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument(
        "--transport",
        choices=["sse", "ws"],
        default="sse",
        help="Taskstream's side (the baseline is SSE either way)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=8192)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", help="py-spy each server during its storm: PATH.<server>.txt")
    parser.add_argument(
        "--cpus", action="store_true", help="servers on a core of their own (bench.common.pin)"
    )
    args = parser.parse_args()
    if args.command == "clients":
        run_clients(args)
        return
    result = asyncio.run(bench(args))
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
