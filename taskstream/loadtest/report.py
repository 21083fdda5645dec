"""The load test's figures: what the clients saw, and what the server spent (when local)."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from taskstream.loadtest.clients import Tally

if TYPE_CHECKING:
    from taskstream.loadtest import Options

Report = dict[str, Any]


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(values)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1)

    return {"p50": at(50), "p90": at(90), "p99": at(99), "max": round(ordered[-1], 1)}


class Probe:
    """The server's RSS and CPU from /proc (with its pid: a supervisor's are its web
    processes'), its Redis connections (with a URL)."""

    def __init__(self, pid: int | None, redis_url: str | None) -> None:
        self.pid = pid
        self.redis_url = redis_url
        self.start_rss = self.start_cpu = self.start_time = self.peak_rss = 0.0
        self.most_open = 0  # the most client streams open at one sample

    async def start(self) -> None:
        self.start_time = time.monotonic()
        if self.pid:
            self.start_rss, self.start_cpu = self._rss(), self._cpu()
            self.peak_rss = self.start_rss

    def sample(self, open_streams: int = 0) -> None:
        """Note the server's RSS and the open streams now (once a second), for their peaks."""
        self.most_open = max(self.most_open, open_streams)
        if self.pid:
            self.peak_rss = max(self.peak_rss, self._rss())

    async def finish(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.pid:
            elapsed = time.monotonic() - self.start_time
            self.sample()
            rss, cpu = self._rss(), self._cpu() - self.start_cpu
            found |= {
                "rss_start_mib": round(self.start_rss / 1024, 1),
                "rss_peak_mib": round(self.peak_rss / 1024, 1),
                "rss_end_mib": round(rss / 1024, 1),
                "rss_growth_kib": round(self.peak_rss - self.start_rss),
                "most_open_streams": self.most_open,
                "cpu_percent_of_a_core": round(100 * cpu / elapsed),
            }
        if self.redis_url:
            redis = Redis.from_url(self.redis_url, decode_responses=True)
            try:
                clients = await redis.client_list()
            finally:
                await redis.aclose()
            found["redis_connections_web"] = sum(
                1 for c in clients if c["name"].startswith("taskstream:web")
            )
            found["redis_connections_all"] = len(clients)
        return found

    def _rss(self) -> float:
        assert self.pid is not None
        return family_rss_kib(self.pid)

    def _cpu(self) -> float:
        assert self.pid is not None
        return family_cpu_seconds(self.pid)


def family(pid: int) -> list[int]:
    """`pid` and the processes it started (a supervisor's web processes)."""
    return [pid, *children(pid)]


def family_rss_kib(pid: int) -> float:
    return sum(_or_gone(rss_kib, p) for p in family(pid))


def family_cpu_seconds(pid: int) -> float:
    return sum(_or_gone(cpu_seconds, p) for p in family(pid))


def _or_gone(read: Callable[[int], float], pid: int) -> float:
    """`read(pid)`, or 0 for a process that ended meanwhile."""
    try:
        return read(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def rss_kib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1])
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The processes `pid` started (Linux)."""
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _group(tallies: list[Tally], seconds: float) -> Report:
    streaming = [t for t in tallies if t.transport != "poll"]
    expected = sum(
        (t.last_version or 0) - (t.first_version or 0)
        for t in streaming
        if t.first_version is not None
    )
    requests = sum(t.requests for t in tallies)
    bytes_in = sum(t.bytes_in for t in tallies)
    errors = [t.failed for t in tallies if t.failed]
    return {
        "clients": len(tallies),
        "connected": sum(t.connected for t in tallies),
        "failed": len(errors),
        "errors": sorted(set(errors))[:5],
        "finished": sum(t.done for t in tallies),
        "reconnects": sum(t.reconnects for t in tallies),
        "events": {
            "expected": expected,
            "received": sum(t.received for t in streaming),
            "lost": sum(t.lost for t in streaming),
            "duplicated": sum(t.duplicated for t in streaming),
            "status_changes_seen_by_polling": sum(
                t.received for t in tallies if t not in streaming
            ),
        },
        "latency_ms": percentiles([lat for t in streaming for _, lat in t.latencies_ms]),
        "completion_latency_ms": percentiles(
            [t.completion_ms for t in tallies if t.completion_ms is not None]
        ),
        "requests": requests,
        "requests_per_s": round(requests / seconds, 1),
        "bytes_per_s": round(bytes_in / seconds),
    }


def summarize(
    options: Options,
    tallies: list[Tally],
    started: float,
    ended: float,
    storm_s: float | None,
    server: dict[str, Any],
) -> Report:
    seconds = max(ended - started, 1e-3)
    by_transport: dict[str, list[Tally]] = defaultdict(list)
    for tally in tallies:
        by_transport[tally.transport].append(tally)
    report: Report = {
        "url": options.url,
        "transport": options.transport,
        "share": options.share,
        "tasks": len({t.task_id for t in tallies}),
        "seconds": round(seconds, 1),
        **_group(tallies, seconds),
    }
    if len(by_transport) > 1:
        report["by_transport"] = {k: _group(v, seconds) for k, v in by_transport.items()}
    if options.storm_at is not None:
        recovery = None if storm_s is None else round(storm_s, 2)  # None: never recovered
        report["storm"] = {"recovery_s": recovery, "lost": report["events"]["lost"]}
    if server:
        report["server"] = server
        if server.get("most_open_streams"):  # peak growth over the most streams open at once
            server["rss_per_stream_kib"] = round(
                server["rss_growth_kib"] / server["most_open_streams"], 1
            )
    report["latency_over_time"] = _over_time(tallies, started)
    return report


def _over_time(tallies: list[Tally], started: float) -> list[dict[str, Any]]:
    """Latency percentiles second by second, for the plot."""
    per_second: dict[int, list[float]] = defaultdict(list)
    for tally in tallies:
        for when, latency in tally.latencies_ms:
            per_second[int(when - started)].append(latency)
    return [{"second": s, **percentiles(v)} for s, v in sorted(per_second.items())]


def render(report: Report) -> str:
    """The report as the terminal shows it."""
    lines = [
        f"{report['clients']} clients ({report['transport']}, {report['share']} a task, "
        f"{report['tasks']} tasks) in {report['seconds']} s",
        f"  connected {report['connected']}  failed {report['failed']}  "
        f"finished {report['finished']}  reconnects {report['reconnects']}",
    ]
    events = report["events"]
    lines.append(
        f"  events expected {events['expected']}  received {events['received']}  "
        f"lost {events['lost']}  duplicated {events['duplicated']}"
    )
    for name in ("latency_ms", "completion_latency_ms"):
        p = report[name]
        lines.append(f"  {name:<22} p50 {p['p50']}  p90 {p['p90']}  p99 {p['p99']}  max {p['max']}")
    lines.append(
        f"  requests {report['requests']} ({report['requests_per_s']}/s)  "
        f"bytes/s {report['bytes_per_s']}"
    )
    if "load_cpu_percent_of_a_core" in report:
        lines.append(f"  load: {report['load_cpu_percent_of_a_core']} % of a core per process")
    if "storm" in report:
        lines.append(f"  storm: recovered in {report['storm']['recovery_s']} s")
    if "server" in report:
        lines.append("  server: " + "  ".join(f"{k} {v}" for k, v in report["server"].items()))
    for error in report["errors"]:
        lines.append(f"  error: {error}")
    return "\n".join(lines)


PLOT_NEEDS = "--plot needs matplotlib: pip install matplotlib (or the extra taskstream[plot])"


def plot(report: Report, path: str) -> None:
    """Latency percentiles over time as a PNG (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit(PLOT_NEEDS) from None
    rows = report["latency_over_time"]
    figure, axes = plt.subplots(figsize=(8, 4))
    for key in ("p50", "p90", "p99"):
        axes.plot([r["second"] for r in rows], [r[key] for r in rows], label=key)
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("publish → receive latency (ms)")
    axes.set_title(f"{report['clients']} clients, {report['transport']}")
    axes.legend()
    figure.savefig(path, dpi=100, bbox_inches="tight")
