"""Two web processes and two workers under the same load, the task streams first on one
Valkey primary, then on a cluster of three primaries (with three replicas); the two side by
side, with how much CPU each Redis-side process spent.

    python -m bench.scaleout --clients 4000 [--transport sse] [--seconds 20 --step 2]

Each layout starts from nothing (its own Valkey for the queue and accounts, its own cluster)
and is driven by one `taskstream loadtest` whose clients are dealt over both web
processes. With `--cpus` the web processes get the first core and everything else the rest
(`bench.common.pin`). `--json` prints the two reports as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import pin, server_env, wait_ready
from taskstream.embedded import Cluster, Valkey, free_port
from taskstream.loadtest.report import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
LAYOUTS = ("one primary", "3-primary cluster")


def run(layout: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    control = Valkey(workdir / "valkey")
    control.start()
    cluster = Cluster(workdir / "cluster") if layout != LAYOUTS[0] else None
    extra = {"TASKSTREAM_WORKER_MAX_JOBS": "6000"}
    if cluster is not None:
        cluster.start()
        extra["TASKSTREAM_STREAMS_URL"] = cluster.url
    env = server_env(control.url, **extra)
    ports = [free_port(), free_port()]
    log = (workdir / "servers.log").open("ab")
    command = [sys.executable, "-m", "taskstream.cli"]
    webs = [subprocess.Popen([*command, "web", "--port", str(port)], env=env, cwd=ROOT,
                             stdout=log, stderr=log) for port in ports]  # fmt: skip
    workers = [subprocess.Popen([*command, "worker"], env=env, cwd=ROOT, stdout=log, stderr=log)
               for _ in range(2)]  # fmt: skip
    servers = {"queue and accounts": control}
    if cluster is not None:
        servers |= {f"shard {i + 1}": node for i, node in enumerate(cluster.nodes[:3])}
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url in urls:
            wait_ready(url)
        before = {name: cpu_seconds(_pid(server)) for name, server in servers.items()}
        load = subprocess.Popen(
            [*command, "loadtest", "--url", ",".join(urls), "--clients", str(args.clients),
             "--transport", args.transport, "--seconds", str(args.seconds),
             "--step", str(args.step), "--ramp", str(args.ramp), "--json", "--quiet",
             "--max-seconds", "300"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        if args.cpus:
            others = [_pid(s) for s in (cluster.nodes if cluster else [])] + [_pid(control)]
            pin([w.pid for w in webs], [*others, load.pid, *(w.pid for w in workers)])
        out, err = load.communicate(timeout=600)
        if load.returncode != 0:
            raise RuntimeError(f"{layout}: {err[-2000:]}")
        report: dict[str, Any] = json.loads(out)
        report.pop("latency_over_time", None)
        report["redis_cpu_s"] = {
            name: round(cpu_seconds(_pid(server)) - before[name], 2)
            for name, server in servers.items()
        }
        report["layout"] = layout
        return report
    finally:
        for process in [*webs, *workers]:
            process.terminate()
        for process in [*webs, *workers]:
            process.wait(60)
        if cluster is not None:
            cluster.stop()
        control.stop()


def _pid(server: Valkey) -> int:
    assert server.process is not None
    return server.process.pid


def render(reports: list[dict[str, Any]]) -> str:
    lines = ["| | " + " | ".join(r["layout"] for r in reports) + " |",
             "| --- |" + " --- |" * len(reports)]  # fmt: skip

    def row(title: str, cell: Any) -> None:
        lines.append(f"| {title} | " + " | ".join(str(cell(r)) for r in reports) + " |")

    row("clients (finished)", lambda r: f"{r['clients']:,} ({r['finished']:,})")
    row("events received / expected", lambda r: f"{r['events']['received']:,} / "
        f"{r['events']['expected']:,}")  # fmt: skip
    row("lost / duplicated", lambda r: f"{r['events']['lost']} / {r['events']['duplicated']}")
    row("progress p50 / p99 (ms)", lambda r: f"{r['latency_ms']['p50']} / {r['latency_ms']['p99']}")
    row("completion p99 (ms)", lambda r: r["completion_latency_ms"]["p99"])
    row("Redis CPU-s, busiest server", lambda r: max(r["redis_cpu_s"].values()))
    row("Redis CPU-s, each", lambda r: ", ".join(f"{k} {v}" for k, v in r["redis_cpu_s"].items()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout")
    parser.add_argument("--clients", type=int, default=4000)
    parser.add_argument("--transport", choices=["sse", "ws", "mixed"], default="sse")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--step", type=float, default=2.0)
    parser.add_argument("--ramp", type=float, default=10.0)
    parser.add_argument("--cpus", action="store_true", help="the web processes on a core")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="taskstream-scaleout-"))
    reports = [run(layout, args, workdir / str(i)) for i, layout in enumerate(LAYOUTS)]
    if args.json:
        print(json.dumps({"layouts": reports}))
    else:
        print(render(reports))


if __name__ == "__main__":
    main()
