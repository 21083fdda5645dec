"""The standard benchmark matrix, written to docs/benchmarks.md.

    python -m bench.matrix              # every row, 3 runs each, medians reported
    python -m bench.matrix --repeat 1 --only sse-1k,ws-1k

Each run starts a fresh web process and two workers on one Valkey, drives them with
`taskstream loadtest` from a separate process, and stops them. Rows that compare
(SSE, WebSocket and polling at the same size) run in the same invocation, interleaved
run by run, so that they share the machine's state.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import server_env
from taskstream.embedded import Valkey, free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    name: str
    title: str
    args: list[str]


# every task runs 20 s with an event every 2 s: 10,000 tasks make 5,000 events/s
TASK = ["--seconds", "20", "--step", "2"]
ROWS = [
    Row("sse-1k", "SSE, 1,000 clients", ["--clients", "1000", "--transport", "sse", *TASK]),
    Row("ws-1k", "WebSocket, 1,000 clients", ["--clients", "1000", "--transport", "ws", *TASK]),
    Row("poll-1k", "polling every 2 s, 1,000 clients",
        ["--clients", "1000", "--transport", "poll", *TASK]),
    Row("sse-10k", "SSE, 10,000 clients",
        ["--clients", "10000", "--transport", "sse", "--ramp", "15", *TASK]),
    Row("ws-10k", "WebSocket, 10,000 clients",
        ["--clients", "10000", "--transport", "ws", "--ramp", "15", *TASK]),
    Row("poll-10k", "polling every 2 s, 10,000 clients",
        ["--clients", "10000", "--transport", "poll", "--ramp", "15", *TASK]),
    Row("fanout-1k", "one task watched by 1,000 SSE clients",
        ["--clients", "1000", "--share", "1000", "--transport", "sse", "--seconds", "20",
         "--step", "0.2"]),
    Row("storm-5k", "reconnect storm, 5,000 SSE clients",
        ["--clients", "5000", "--transport", "sse", "--ramp", "8", "--storm-at", "14", *TASK]),
]  # fmt: skip


def _start(role: str, env: dict[str, str], log: Path, port: int) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "taskstream.cli", role]
    if role == "web":
        args += ["--port", str(port)]
    with log.open("ab") as out:
        return subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=out)


def run_once(row: Row, valkey: Valkey, workdir: Path) -> dict[str, Any]:
    port = free_port()
    env = server_env(valkey.url, TASKSTREAM_WORKER_MAX_JOBS="6000")
    log = workdir / f"{row.name}.log"
    web = _start("web", env, log, port)
    workers = [_start("worker", env, log, port) for _ in range(2)]
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(400):
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        done = subprocess.run(
            [sys.executable, "-m", "taskstream.cli", "loadtest", "--url", url, *row.args,
             "--server-pid", str(web.pid), "--redis-url", valkey.url, "--json", "--quiet",
             "--max-seconds", "240"],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{row.name}: {done.stderr[-2000:]}")
        report: dict[str, Any] = json.loads(done.stdout)
        return report
    finally:
        for process in [web, *workers]:
            process.terminate()
        for process in [web, *workers]:
            process.wait(60)


def median(reports: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for report in reports:
        value: Any = report
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return round(statistics.median(values), 1) if values else None


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    head = (
        "| row | clients connected / finished | events expected / lost / dup | "
        "latency p50 / p99 ms | completion p50 / p99 ms | requests/s | server CPU % of a core "
        "| server RSS per open stream KiB | web Redis connections |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    lines = []
    for row in ROWS:
        reports = results.get(row.name)
        if not reports:
            continue

        def m(*path: str, reports: list[dict[str, Any]] = reports) -> str:
            value = median(reports, *path)
            return "—" if value is None else f"{value:g}"

        storm = (
            f"; storm recovery {m('storm', 'recovery_s')} s" if row.name.startswith("storm") else ""
        )
        lines.append(
            f"| {row.title}{storm} | {m('connected')} / {m('finished')} "
            f"| {m('events', 'expected')} / {m('events', 'lost')} / {m('events', 'duplicated')} "
            f"| {m('latency_ms', 'p50')} / {m('latency_ms', 'p99')} "
            f"| {m('completion_latency_ms', 'p50')} / {m('completion_latency_ms', 'p99')} "
            f"| {m('requests_per_s')} | {m('server', 'cpu_percent_of_a_core')} "
            f"| {m('server', 'rss_per_stream_kib')} | {m('server', 'redis_connections_web')} |"
        )
    return head + "\n".join(lines) + "\n"


def verdicts(results: dict[str, list[dict[str, Any]]]) -> str:
    """The core issue's targets against the 10,000-client rows, met or missed by how much."""
    lines = []
    for name in ("sse-10k", "ws-10k"):
        reports = results.get(name)
        if not reports:
            continue
        connected = median(reports, "connected") or 0
        lost = median(reports, "events", "lost")
        p99 = median(reports, "latency_ms", "p99")
        rss = median(reports, "server", "rss_per_stream_kib")
        checks = [
            ("10,000 streams", connected >= 10000, f"{connected:g} connected"),
            ("0 lost events", lost == 0, f"{lost:g} lost"),
            ("p99 ≤ 50 ms", p99 is not None and p99 <= 50, f"p99 {p99:g} ms"
             + (f", {p99 / 50:.1f}× the target" if p99 and p99 > 50 else "")),
            ("≤ 24 KiB RSS per stream", rss is not None and rss <= 24, f"{rss:g} KiB"
             + (f", {rss / 24:.1f}× the target" if rss and rss > 24 else "")),
        ]  # fmt: skip
        small = results.get(name.replace("10k", "1k"))
        if small:
            a, b = (
                median(small, "server", "redis_connections_web"),
                median(reports, "server", "redis_connections_web"),
            )
            checks.append(
                (
                    "Redis connections constant",
                    a is not None and b is not None and b <= 33,
                    f"{a:g} at 1,000, {b:g} at 10,000 (pool ≤ 32 + hub)",
                )
            )
        for target, met, detail in checks:
            lines.append(f"- {name}: {target}: **{'met' if met else 'missed'}** ({detail})")
    return "\n".join(lines) + "\n"


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return f"{os.cpu_count()} cores ({model}), {memory} GiB, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.matrix")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", help="comma-separated row names")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    rows = [r for r in ROWS if not args.only or r.name in args.only.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="taskstream-matrix-"))
    valkey = Valkey(workdir / "valkey")
    valkey.start()
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for attempt in range(args.repeat):
            for row in rows:
                print(f"run {attempt + 1}/{args.repeat}: {row.title}", file=sys.stderr, flush=True)
                results.setdefault(row.name, []).append(run_once(row, valkey, workdir))
                valkey_flush(valkey)
    finally:
        valkey.stop()
    text = (
        "# Benchmarks\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {machine()}; Valkey, one web process, "
        "two workers and the load generator all on this machine. "
        f"Medians of {args.repeat} run(s) per row; rows interleaved run by run. "
        "Written by `python -m bench.matrix`.\n\n"
        "Targets (one web process): 10,000 streams, 0 lost at 5,000 events/s, "
        "p99 ≤ 50 ms, ≤ 24 KiB RSS per idle stream, Redis connections constant.\n\n"
        + table(results)
        + "\n"
        + verdicts(results)
        + "\nRSS per open stream: the web process's peak RSS growth over the most client "
        "streams open at one time (both sampled each second). "
        "Latency is publish → receive (the event id's timestamp against the client's "
        "clock); completion is job finished → client knows. Polling's events are the status "
        "changes it happened to see. Raw reports: `docs/benchmarks.json`.\n"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    slim = {k: [{x: y for x, y in r.items() if x != "latency_over_time"} for r in v]
            for k, v in results.items()}  # fmt: skip
    Path(args.out).with_suffix(".json").write_text(json.dumps(slim, indent=1))
    print(text)


def valkey_flush(valkey: Valkey) -> None:
    """Each run starts from an empty keyspace, so that runs do not weigh on each other."""
    import redis

    client = redis.Redis.from_url(valkey.url)
    try:
        client.flushall()
    finally:
        client.close()


if __name__ == "__main__":
    main()
