"""`GET /metrics`, in Prometheus' text format.

Three sources: the task metrics in Redis (`jobs.infra.metrics`; cluster-wide, the same from
every process: take `max` over instances), each live web process's own (streams open,
events delivered, status polls, the hub's link and lag; labelled `process`, this one's
live, the others' as they published them at most two seconds ago: sum over `process`),
and each live worker's gauges.
"""

from __future__ import annotations

import hmac
from collections import defaultdict

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from jobs.infra import metrics
from server.client_address import is_local
from server.errors import NotFound
from server.realtime.figures import figures
from server.state import app_state

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Exposition:
    """Prometheus text lines, one HELP/TYPE header per metric."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, value: float, **labels: str) -> None:
        inner = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
        self.lines.append(f"{name}{{{inner}}} {value:g}" if inner else f"{name} {value:g}")

    def histogram(
        self, name: str, buckets: dict[float, float], total: float, **labels: str
    ) -> None:
        """`buckets`: upper bound → count in that bucket alone; made cumulative here."""
        running = 0.0
        for bound in sorted(buckets):
            running += buckets[bound]
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            self.sample(f"{name}_bucket", running, **labels, le=le)
        self.sample(f"{name}_sum", total, **labels)
        self.sample(f"{name}_count", running, **labels)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def escape(value: str) -> str:
    """A label value as the text format wants it: backslash, double quote and line feed
    escaped (a worker's or a kind's name could hold any of them)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _task_metrics(out: Exposition, fields: dict[str, str]) -> None:
    created: dict[str, float] = {}
    finished: dict[tuple[str, str, str], float] = {}
    histograms: dict[tuple[str, str], dict[float, float]] = defaultdict(dict)
    sums: dict[tuple[str, str], float] = defaultdict(float)
    for field, raw in fields.items():
        name, *parts = field.split("|")
        value = float(raw)
        if name == "created":
            created[parts[0]] = value
        elif name == "finished":
            finished[(parts[0], parts[1], parts[2])] = value
        elif name in ("duration", "polls"):
            bound = float("inf") if parts[1] == "+Inf" else float(parts[1])
            histograms[(name, parts[0])][bound] = value
        elif name in ("duration_sum", "polls_sum"):
            sums[(name.removesuffix("_sum"), parts[0])] = value
    out.metric("taskstream_tasks_created_total", "counter", "Tasks created, by kind.")
    for kind, value in sorted(created.items()):
        out.sample("taskstream_tasks_created_total", value, kind=kind)
    out.metric(
        "taskstream_tasks_finished_total", "counter", "Tasks ended, by kind, status, error code."
    )
    for (kind, status, code), value in sorted(finished.items()):
        out.sample("taskstream_tasks_finished_total", value, kind=kind, status=status, error=code)
    for name, help_text in (
        ("duration", "Seconds from a task's creation to its end."),
        ("polls", "Status polls a task got before it ended."),
    ):
        metric = (
            f"taskstream_task_{name}_seconds" if name == "duration" else "taskstream_task_polls"
        )
        out.metric(metric, "histogram", help_text)
        bounds = metrics.DURATION_BUCKETS if name == "duration" else metrics.POLL_BUCKETS
        for (hist, kind), counts in sorted(histograms.items()):
            if hist == name:
                full = {**dict.fromkeys([*bounds, float("inf")], 0.0), **counts}
                out.histogram(metric, full, sums[(name, kind)], kind=kind)


async def endpoint(request: Request) -> Response:
    """Hosts, pids and load are not for everyone: a client on this machine, or one with
    `Authorization: Bearer $TASKSTREAM_METRICS_TOKEN`; anyone else is told it is not here."""
    state = app_state(request)
    if not (is_local(request) or _has_token(request, state["settings"].metrics_token)):
        raise NotFound("Not Found")
    tasks, workers = await metrics.read(state["redis"])
    out = Exposition()
    _task_metrics(out, tasks)
    webs = await metrics.published(state["redis"], metrics.WEBS)
    webs[metrics.process_name()] = {
        k: f"{v:g}" for k, v in figures(state["gate"], state["hub"]).items()
    }
    _web_metrics(out, webs)
    out.metric("taskstream_worker_jobs", "gauge", "Each live worker's job counts.")
    for name, gauges in sorted(workers.items()):
        for key, value in sorted(gauges.items()):
            out.sample("taskstream_worker_jobs", float(value), worker=name, state=key)
    return PlainTextResponse(out.text(), media_type=CONTENT_TYPE)


# each web process's figures (`server/realtime/figures.py`): metric, type, help, field, label
_WEB = [
    ("taskstream_open_streams", "gauge", "Streams open in the process.", "open", "transport"),
    ("taskstream_events_delivered_total", "counter", "Events sent by the process.", "delivered",
     "transport"),
    ("taskstream_streams_refused_total", "counter", "Streams refused by the process.", "refused",
     "reason"),
    ("taskstream_stream_capacity", "gauge", "Streams the process can hold.", "capacity", ""),
    ("taskstream_status_polls_total", "counter", "Status requests the process answered.",
     "polls", ""),
    ("taskstream_hub_reconnects_total", "counter", "Times the process's hub re-linked to Redis.",
     "hub_reconnects", ""),
    ("taskstream_hub_channels", "gauge",
     "Channels the process listens to: tasks, users' new tasks, revocations.", "hub_channels", ""),
]  # fmt: skip


def _web_metrics(out: Exposition, webs: dict[str, dict[str, str]]) -> None:
    """Every live web process's figures, labelled `process` (host:pid)."""
    for name, kind, help_text, field, label in _WEB:
        out.metric(name, kind, help_text)
        for process, found in sorted(webs.items()):
            for key, raw in sorted(found.items()):
                head, _, tail = key.partition("|")
                if head == field:
                    labels = {label: tail} if label else {}
                    out.sample(name, float(raw), process=process, **labels)
    out.metric("taskstream_hub_lag_milliseconds", "histogram", "Publish → hub dispatch delay.")
    for process, found in sorted(webs.items()):
        buckets = {float(k.partition("|")[2]): float(v) for k, v in found.items()
                   if k.startswith("lag|")}  # fmt: skip
        out.histogram("taskstream_hub_lag_milliseconds", buckets,
                      float(found.get("lag_sum", 0)), process=process)  # fmt: skip


def _has_token(request: Request, token: str | None) -> bool:
    presented = request.headers.get("authorization", "").partition(" ")[2].encode()
    return token is not None and hmac.compare_digest(presented, token.encode())


routes = [Route("/metrics", endpoint)]
