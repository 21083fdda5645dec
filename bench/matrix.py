"""The standard benchmark matrix, written to docs/benchmarks.md (with a plot).

    python -m bench.matrix              # every row, 3 runs each, medians reported
    python -m bench.matrix --repeat 1 --only sse-1k,ws-1k --cpus
    python -m bench.matrix --repeat 1 --node     # the node row at 16 cores' scale

The page and its JSON are written again after every run, so a run cut short keeps what
it measured.

Four kinds of row. Load rows start a fresh web process and two workers on one Valkey
and drive them with `taskstream loadtest` from a separate process: real jobs, end to end.
Storm rows run `bench.storm` (N streams opened at once) and stream rows `bench.streams`
(N streams, events published straight into the task records at a set rate); both measure
the minimal shared-hub server (`bench/baseline.py`) in the same run, so their figures are
also ratios. The scale-out row runs `bench.scaleout` (2 web processes and 2 workers, the
task streams on one primary and then on a 3-primary cluster, the same load). Rows run
interleaved run by run, so that rows compared share the machine's
state. With `--cpus`, the web process (and the baseline) get a core of their own, and
Valkey, the workers and the load generators share the others.
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import pin, server_env
from bench.scaleout import render as render_scaleout
from taskstream.embedded import Valkey, free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    name: str
    title: str
    args: list[str]
    bench: str = "loadtest"  # or "storm", "streams": the module of bench/ that runs it


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
    Row("open-sse-5k", "5,000 SSE streams opened at once",
        ["--streams", "5000", "--repeat", "1"], "storm"),
    Row("open-ws-5k", "5,000 WebSockets opened at once",
        ["--streams", "5000", "--repeat", "1", "--transport", "ws"], "storm"),
    Row("burst-10k", "10,000 streams, their tasks all finishing within 2 s",
        ["--streams", "10000", "--rate", "5000", "--seconds", "2", "--ramp", "10",
         "--baseline"], "streams"),
    Row("deliver-10k", "10,000 streams at 5,000 events/s for 20 s",
        ["--streams", "10000", "--rate", "5000", "--seconds", "20", "--ramp", "10",
         "--baseline"], "streams"),
    Row("scaleout-4k", "2 web + 2 workers, 4,000 SSE clients: one primary, a 3-primary cluster",
        ["--clients", "4000", *TASK], "scaleout"),
    # a node: N processes on one port, more streams than one holds, then 2,000 past the cap
    Row("node", "2 web processes on one port, 30,000 streams at 5,000 events/s",
        ["--streams", "30000", "--processes", "2", "--cap", "15500", "--extra", "2000",
         "--rate", "5000", "--seconds", "20", "--ramp", "30"], "streams"),
]  # fmt: skip
# the node row at a 16-core node's scale: run alone (--node), into benchmarks-node.md
NODE = Row("node-16", "16 web processes on one port, 100,000 streams at 20,000 events/s",
           ["--streams", "100000", "--processes", "16", "--cap", "6500", "--extra", "5000",
            "--rate", "20000", "--seconds", "20", "--ramp", "60"], "streams")  # fmt: skip
EVERY = [*ROWS, NODE]  # what a page may show


def _start(role: str, env: dict[str, str], log: Path, port: int) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "taskstream.cli", role]
    if role == "web":
        args += ["--port", str(port)]
    with log.open("ab") as out:
        return subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=out)


def run_once(row: Row, valkey: Valkey, workdir: Path, cpus: bool) -> dict[str, Any]:
    if row.bench != "loadtest":
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{row.bench}", *row.args, "--json",
             *(["--cpus"] if cpus else [])],
            cwd=ROOT, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{row.name}: {done.stderr[-2000:]}")
        report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
        return report
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
        load = subprocess.Popen(
            [sys.executable, "-m", "taskstream.cli", "loadtest", "--url", url, *row.args,
             "--server-pid", str(web.pid), "--redis-url", valkey.url, "--json", "--quiet",
             "--max-seconds", "240"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        if cpus:  # this process keeps every core: the rows after this one pin their own
            assert valkey.process is not None
            pin([web.pid], [valkey.process.pid, load.pid, *(w.pid for w in workers)])
        out, err = load.communicate(timeout=600)
        if load.returncode != 0:
            raise RuntimeError(f"{row.name}: {err[-2000:]}")
        loaded: dict[str, Any] = json.loads(out)
        return loaded
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
    return statistics.median(values) if values else None


def fmt(value: float | None) -> str:
    """Three significant figures (0.276, 22.5, 394.7), whole numbers from 1,000 on."""
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.1f}".removesuffix(".0")


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    """The load rows (`taskstream loadtest`)."""
    rows = []
    for row in EVERY:
        reports = results.get(row.name)
        if not reports or row.bench != "loadtest":
            continue

        def m(*path: str, reports: list[dict[str, Any]] = reports) -> str:
            return _cell(reports, *path)

        storm = (
            f"; storm recovery {m('storm', 'recovery_s')} s" if row.name.startswith("storm") else ""
        )
        rows.append([
            row.title + storm, f"{m('connected')} / {m('finished')}",
            f"{m('events', 'expected')} / {m('events', 'lost')} / {m('events', 'duplicated')}",
            f"{m('latency_ms', 'p50')} / {m('latency_ms', 'p99')}",
            f"{m('completion_latency_ms', 'p50')} / {m('completion_latency_ms', 'p99')}",
            m("requests_per_s"), m("server", "cpu_percent_of_a_core"),
            m("server", "rss_per_stream_kib"), m("server", "redis_connections_web"),
            m("load_cpu_percent_of_a_core"),
        ])  # fmt: skip
    columns = ["row", "clients connected / finished", "events expected / lost / dup",
               "latency p50 / p99 ms", "completion p50 / p99 ms", "requests/s",
               "server CPU % of a core", "server RSS per open stream KiB",
               "web Redis connections", "load generator CPU % of a core"]  # fmt: skip
    return _markdown(columns, rows)


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
            ("10,000 streams", connected >= 10000, f"{fmt(connected)} connected"),
            ("0 lost events", lost == 0, f"{fmt(lost)} lost"),
            ("p99 ≤ 50 ms", p99 is not None and p99 <= 50, f"p99 {fmt(p99)} ms"
             + (f", {p99 / 50:.1f}× the target" if p99 and p99 > 50 else "")),
            ("≤ 24 KiB RSS per stream", rss is not None and rss <= 24, f"{fmt(rss)} KiB"
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
                    f"{fmt(a)} at 1,000, {fmt(b)} at 10,000 (pool ≤ 32 + hub)",
                )
            )
        for target, met, detail in checks:
            lines.append(f"- {name}: {target}: **{'met' if met else 'missed'}** ({detail})")
    return "\n".join(lines) + "\n"


def _cell(reports: list[dict[str, Any]], *path: str) -> str:
    return fmt(median(reports, *path))


def _markdown(columns: list[str], rows: list[list[str]]) -> str:
    """A Markdown table: its head, then a line per row."""
    lines = [columns, ["---"] * len(columns), *rows]
    return "".join(f"| {' | '.join(cells)} |\n" for cells in lines)


def storm_table(results: dict[str, list[dict[str, Any]]]) -> str:
    """Streams opened at once: Taskstream / the baseline (their ratio)."""
    rows = []
    for row in (r for r in EVERY if r.bench == "storm" and results.get(r.name)):
        reports = results[row.name]

        def both(*path: str, reports: list[dict[str, Any]] = reports) -> str:
            ours, base = (_cell(reports, *path, server) for server in ("taskstream", "baseline"))
            return f"{ours} / {base}"

        def ratio(figure: str, reports: list[dict[str, Any]] = reports) -> str:
            return f"{both(figure)} (×{_cell(reports, figure, 'ratio')})"

        rows.append([
            row.title, ratio("all_connected_s"), ratio("cpu_ms_per_open"),
            both("opens_per_cpu_second"), ratio("rss_kib_per_stream"),
            ratio("cpu_ms_per_close"), both("failed"),
        ])  # fmt: skip
    columns = ["row", "all connected, s", "CPU ms per open", "opens per CPU-second",
               "RSS KiB per stream", "CPU ms per close", "failed"]  # fmt: skip
    return _markdown(columns, rows)


def streams_table(results: dict[str, list[dict[str, Any]]]) -> str:
    """Events published straight into the records: one line per server."""
    rows = []
    for row in (r for r in EVERY if r.bench == "streams" and results.get(r.name)):
        reports = results[row.name]
        for server in ("taskstream", "baseline"):
            if not any(server in report for report in reports):
                continue

            def m(*path: str, server: str = server, reports: list[dict[str, Any]] = reports) -> str:
                return _cell(reports, server, *path)

            past = "past_the_cap"
            rows.append([
                row.title, server, m("connected"),
                f"{m('events_sent')} / {m('events_lost')} / {m('duplicates')}",
                f"{m('progress_latency_ms', 'p50')} / {m('progress_latency_ms', 'p99')}",
                f"{m('completion_latency_ms', 'p50')} / {m('completion_latency_ms', 'p99')}",
                m("rss_per_idle_stream_kib"), m("server_cpu_percent_while_publishing"),
                f"{m(past, 'asked')} / {m(past, 'refused_503')} / {m(past, 'unanswered')} / "
                f"{m(past, 'refusal_ms', 'max')}",
            ])  # fmt: skip
    columns = ["row", "server", "connected", "events sent / lost / dup",
               "progress p50 / p99 ms", "completion p50 / p99 ms", "RSS KiB per idle stream",
               "server CPU % of a core",
               "past the cap: asked / 503 / unanswered / slowest 503 ms"]  # fmt: skip
    return _markdown(columns, rows)


def scaleout_table(results: dict[str, list[dict[str, Any]]]) -> str:
    runs = results.get("scaleout-4k") or []
    return render_scaleout(runs[0]["layouts"]) + "\n" if runs else "(not run)\n"


def goals(results: dict[str, list[dict[str, Any]]]) -> str:
    """The performance issue's goals against the storm and stream rows."""
    checks: list[tuple[str, float | None, float, bool]] = []  # (goal, value, limit, at least)

    def add(
        goal: str, row: str, path: tuple[str, ...], limit: float, at_least: bool = False
    ) -> None:
        reports = results.get(row)
        if reports:
            checks.append((goal, median(reports, *path), limit, at_least))

    add(
        "authenticated SSE streams opened per CPU-second ≥ 3,000",
        "open-sse-5k",
        ("opens_per_cpu_second", "taskstream"),
        3000,
        True,
    )
    add(
        "5,000 streams opened at once: time to all connected ≤ 1.25× the baseline's",
        "open-sse-5k",
        ("all_connected_s", "ratio"),
        1.25,
    )
    add(
        "10,000 tasks finishing within 2 s: completion p99 ≤ 200 ms",
        "burst-10k",
        ("taskstream", "completion_latency_ms", "p99"),
        200,
    )
    add("RSS per idle SSE stream ≤ 24 KiB", "open-sse-5k", ("rss_kib_per_stream", "taskstream"), 24)
    add("RSS per idle WebSocket ≤ 32 KiB", "open-ws-5k", ("rss_kib_per_stream", "taskstream"), 32)
    add("10,000 streams at 5,000 events/s: progress p99 ≤ 50 ms", "deliver-10k",
        ("taskstream", "progress_latency_ms", "p99"), 50)  # fmt: skip
    for node in ("node", "node-16"):
        add(f"{node}: past the processes' caps, the slowest 503 ≤ 1,000 ms", node,
            ("taskstream", "past_the_cap", "refusal_ms", "max"), 1000)  # fmt: skip
        add(f"{node}: past the processes' caps, no client left unanswered", node,
            ("taskstream", "past_the_cap", "unanswered"), 0)  # fmt: skip
    add("node-16: progress p99 ≤ 50 ms", "node-16",
        ("taskstream", "progress_latency_ms", "p99"), 50)  # fmt: skip
    add("node-16: ≤ 20 KiB per idle stream", "node-16",
        ("taskstream", "rss_per_idle_stream_kib"), 20)  # fmt: skip
    lines = []
    for goal, value, limit, at_least in checks:
        met = value is not None and (value >= limit if at_least else value <= limit)
        lines.append(f"- {goal}: **{'met' if met else 'missed'}** ({fmt(value)})")
    lost = [
        median([r], *path) or 0
        for row in EVERY if row.bench == "streams" for r in results.get(row.name, [])
        for path in (("taskstream", "events_lost"), ("taskstream", "duplicates"))
    ]  # fmt: skip
    if lost:
        lines.append(f"- no event lost or duplicated: **{'met' if not any(lost) else 'missed'}**")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, list[dict[str, Any]]], out: Path) -> bool:
    """Taskstream beside the baseline, figure by figure; False when there is nothing to
    plot (no storm or stream row run)."""
    panels = [
        ("CPU ms per stream opened", "open-sse-5k", ("cpu_ms_per_open", "{}")),
        ("RSS KiB per idle SSE stream", "open-sse-5k", ("rss_kib_per_stream", "{}")),
        ("completion p99 ms, 10,000 ending in 2 s", "burst-10k",
         ("{}", "completion_latency_ms", "p99")),
        ("progress p99 ms, 10,000 streams at 5,000 ev/s", "deliver-10k",
         ("{}", "progress_latency_ms", "p99")),
    ]  # fmt: skip
    panels = [p for p in panels if results.get(p[1])]
    if not panels:
        return False
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2))
    for ax, (title, row, path) in zip(figure.axes, panels, strict=True):
        values = [
            median(results[row], *(part.format(server) for part in path)) or 0
            for server in ("taskstream", "baseline")
        ]
        bars = ax.bar(["Taskstream", "baseline"], values, color=["#2b6cb0", "#a0aec0"])
        ax.bar_label(bars, fmt="%g")
        ax.set_title(title, fontsize=9)
        ax.margins(y=0.2)
    figure.suptitle("Taskstream and the minimal shared-hub server, same run", fontsize=10)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    return True


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
    parser.add_argument("--out", help="the page (docs/benchmarks.md; --node: benchmarks-node.md)")
    parser.add_argument(
        "--cpus",
        action="store_true",
        help="the web process on a core of its own (bench.common.pin)",
    )
    parser.add_argument(
        "--render",
        metavar="JSON",
        help="write the page from the reports a run saved (its --repeat and --cpus given again)",
    )
    parser.add_argument(
        "--node",
        action="store_true",
        help="only the node row, at a 16-core node's scale (100,000 streams, 16 processes)",
    )
    args = parser.parse_args()
    out = Path(args.out or ROOT / "docs" / f"benchmarks{'-node' if args.node else ''}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.render:
        write(json.loads(Path(args.render).read_text()), args, out)
    else:
        run_rows(args, lambda results: write(results, args, out))
    print(out.read_text())


def write(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace, out: Path) -> None:
    """The page and its raw reports, from the results so far (after every run: a run cut
    short keeps what it measured)."""
    where = (
        "the node row alone: its web processes, Valkey, the publisher and the client "
        "processes all sharing the machine"
        if args.node
        else "the web process (and the baseline) pinned to a core of its own, Valkey, the "
        "workers and the load generators on the other"
        if args.cpus
        else "Valkey, one web process, two workers and the load generator all sharing it"
    )
    text = (
        "# Benchmarks\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {machine()}; {where}. "
        f"Medians of {args.repeat} run(s) per row; rows interleaved run by run. "
        "Written by `python -m bench.matrix"
        + (" --cpus" if args.cpus else "")
        + (" --node" if args.node else "")
        + "`.\n\n"
        + (
            f"![Taskstream beside the baseline](./{out.stem}.png)\n\n"
            if plot(results, out.with_suffix(".png"))
            else ""
        )
        + "## Jobs end to end (`taskstream loadtest`)\n\n"
        "Targets (one web process): 10,000 streams, 0 lost at 5,000 events/s, "
        "p99 ≤ 50 ms, ≤ 24 KiB RSS per idle stream, Redis connections constant.\n\n"
        + table(results)
        + "\n"
        + verdicts(results)
        + "\nRSS per open stream: the web process's peak RSS growth over the most client "
        "streams open at one time (both sampled each second). "
        "Latency is publish → receive (the event id's timestamp against the client's "
        "clock); completion is job finished → client knows. Polling's events are the status "
        "changes it happened to see. Every task's events come from a real job on the two "
        "workers, which share the machine with the web process.\n\n"
        "## Streams opened at once (`bench.storm`)\n\n"
        "Taskstream / the minimal shared-hub server (`bench/baseline.py`: sse-starlette, no "
        "authentication, no task read) (Taskstream's figure over the baseline's). RSS per "
        "stream is the first storm's growth of a fresh process.\n\n"
        + storm_table(results)
        + "\n## Events published straight into the records (`bench.streams --baseline`)\n\n"
        "Streams opened over 10 s, then progress events written by the workers' own script "
        "from the bench process at the rate given, spread over every task, each task ended "
        "`completed`: what one web process delivers, without the workers' cost. The node "
        "row runs several web processes on one port (`web --processes`), each capped "
        "(`TASKSTREAM_MAX_STREAMS`), the clients spread over as many processes as their "
        "open-files limits need; once all are open, more are asked for at once: each must be "
        "answered, 503 past the caps. RSS is the processes' together.\n\n"
        + streams_table(results)
        + "\n## Scaling out (`bench.scaleout`)\n\n"
        "Two web processes and two workers, the clients dealt over both web processes, the "
        "task streams on one Valkey primary and then on a cluster of three primaries with a "
        "replica each (ARQ's queue and the accounts stay on one server in both: "
        "docs/operations.md). Redis CPU-s is what each server process spent during the load. "
        "One run shown.\n\n"
        + scaleout_table(results)
        + "\n## The performance goals\n\n"
        + goals(results)
        + f"\nRaw reports: `docs/{out.stem}.json`.\n"
    )
    out.write_text(text)
    slim = {k: [{x: y for x, y in r.items() if x != "latency_over_time"} for r in v]
            for k, v in results.items()}  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(slim, indent=1))


def run_rows(
    args: argparse.Namespace, measured: Callable[[dict[str, list[dict[str, Any]]]], None]
) -> None:
    """Every row `--repeat` times, interleaved run by run, on one Valkey; `measured`
    gets the results so far after each run."""
    rows = [r for r in ROWS if not args.only or r.name in args.only.split(",")]
    if args.node:
        rows = [NODE]
    workdir = Path(tempfile.mkdtemp(prefix="taskstream-matrix-"))
    valkey = Valkey(workdir / "valkey")
    valkey.start()
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for attempt in range(args.repeat):
            for row in rows:
                print(f"run {attempt + 1}/{args.repeat}: {row.title}", file=sys.stderr, flush=True)
                results.setdefault(row.name, []).append(run_once(row, valkey, workdir, args.cpus))
                measured(results)
                valkey_flush(valkey)
    finally:
        valkey.stop()


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
