"""`taskstream loadtest`: N concurrent clients following demo tasks on a running Taskstream.

    taskstream loadtest --url http://127.0.0.1:8000 --clients 1000 --transport sse

`--url` may name several web processes, comma-separated: the clients are dealt out over
them in turn (tasks are started through the first). `--procs N` spreads the clients over
N processes of the load test's own (each within its open-files limit, each on a core if
it has one) and merges what they saw into one report.

Each client follows its own demo task (or `--share K` clients share one, for fan-out)
over SSE, WebSocket or polling (`mixed` cycles through the three); tasks are created 50 at
a time and each batch's clients start right after it, spread over `--ramp` seconds in all.
Every task runs `--seconds` seconds with a progress event every `--step` seconds. The run
is bounded: it stops by itself at `--max-seconds`. `--storm-at S` drops
every connection at once S seconds in and lets the clients reconnect with their last ids.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import resource
import sys
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, replace
from multiprocessing import get_context

import httpx

from jobs.infra.openfiles import raise_open_files
from taskstream.loadtest.clients import Tally, Target, follow_poll, follow_sse, follow_ws
from taskstream.loadtest.report import Probe, Report, summarize

TRANSPORTS = ("sse", "ws", "poll")
FILES_RESERVE = 64  # descriptors a load process keeps beside its clients' connections


@dataclass(frozen=True)
class Options:
    url: str = "http://127.0.0.1:8000"
    token: str | None = None
    clients: int = 100
    transport: str = "sse"
    share: int = 1
    ramp: float = 5.0
    seconds: float = 10.0
    step: float = 1.0
    poll_interval: float = 2.0
    storm_at: float | None = None
    max_seconds: float = 300.0
    server_pid: int | None = None
    redis_url: str | None = None
    quiet: bool = False
    procs: int = 1  # processes to spread the clients over
    part: int | None = None  # which of them this is


@dataclass
class Load:
    """What one process's clients saw."""

    tallies: list[Tally]
    started: float
    ended: float
    storm_s: float | None
    most_open: int  # the most streams open at one sample
    cpu_s: float  # what the load process(es) spent: near a core each, they are the limit


async def run(options: Options) -> Report:
    """The load, from this process or spread over `options.procs`: its report."""
    if options.token is None:
        options = replace(options, token=await sign_up(options.url.split(",")[0]))
    probe = Probe(options.server_pid, options.redis_url)
    await probe.start()
    if options.procs == 1:
        load = await _load(options, probe)
    else:
        load = await _spread(options, probe)
    probe.most_open = max(probe.most_open, load.most_open)
    server = await probe.finish()
    report = summarize(options, load.tallies, load.started, load.ended, load.storm_s, server)
    seconds = max(load.ended - load.started, 1e-3)
    report["load_cpu_percent_of_a_core"] = round(100 * load.cpu_s / seconds / options.procs)
    return report


async def _spread(options: Options, probe: Probe) -> Load:
    """The clients dealt over `options.procs` processes (spawned: none shares this one's
    loop or descriptors), each its own load; their tallies merged."""
    parts = [
        replace(options, clients=count, procs=1, part=k)
        for k in range(options.procs)
        if (count := options.clients // options.procs + (k < options.clients % options.procs))
    ]
    ticker = asyncio.create_task(_probe_ticks(probe))
    try:
        with ProcessPoolExecutor(len(parts), mp_context=get_context("spawn")) as pool:
            loop = asyncio.get_running_loop()
            loads = await asyncio.gather(*(loop.run_in_executor(pool, _part, p) for p in parts))
    finally:
        ticker.cancel()
    storms = [load.storm_s for load in loads]
    return Load(
        [tally for load in loads for tally in load.tallies],
        min(load.started for load in loads),
        max(load.ended for load in loads),
        None if None in storms or not storms else max(s for s in storms if s is not None),
        sum(load.most_open for load in loads),
        sum(load.cpu_s for load in loads),
    )


def _part(options: Options) -> Load:
    """One process's share of a spread load (run in a process of its own)."""
    with suppress(ImportError):
        import uvloop

        uvloop.install()
    load = asyncio.run(_load(options, Probe(None, None)))
    for tally in load.tallies:
        tally.drop = None  # a connection's closer: not for another process
    return load


async def _probe_ticks(probe: Probe) -> None:
    while True:
        await asyncio.sleep(1)
        probe.sample()


async def _load(options: Options, probe: Probe) -> Load:
    urls = options.url.split(",")
    open_files = raise_open_files()
    if options.clients + FILES_RESERVE > open_files:
        raise SystemExit(
            f"taskstream loadtest: {options.clients} clients need more than this process's "
            f"{open_files} open files: spread them with --procs"
        )
    # each part deals its clients from its own place in the list: all parts, evenly
    targets = [Target.from_url(url, options.token) for url in urls]
    first = (options.part or 0) % len(targets)
    targets = targets[first:] + targets[:first]
    transports = itertools.cycle(
        TRANSPORTS if options.transport == "mixed" else [options.transport]
    )
    tallies: list[Tally] = []
    started = time.time()
    followers: list[asyncio.Task[None]] = []
    storm: asyncio.Task[float] | None = None
    if options.storm_at is not None:
        storm = asyncio.create_task(_storm(tallies, options.storm_at))
    ticker = asyncio.create_task(_tick(tallies, started, options, probe))
    storm_time: float | None = None
    pause = options.ramp / options.clients
    try:
        async with asyncio.timeout(options.max_seconds):
            # each batch of tasks gets its clients at once, so every client sees its task whole
            count = math.ceil(options.clients / options.share)
            async for task_id in _start_tasks(options, urls[0], count):
                for _ in range(min(options.share, options.clients - len(tallies))):
                    tally = Tally(next(transports), task_id)
                    target = targets[len(tallies) % len(targets)]
                    tallies.append(tally)
                    followers.append(asyncio.create_task(_follow(options, target, tally)))
                    await asyncio.sleep(pause)
            await asyncio.gather(*followers)
            storm_time = await storm if storm is not None else None
    except TimeoutError:
        pass  # bounded: whoever has not finished by now is reported as such
    finally:
        for task in [*followers, ticker, *([storm] if storm else [])]:
            task.cancel()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    return Load(
        tallies, started, time.time(), storm_time, probe.most_open, cpu.ru_utime + cpu.ru_stime
    )


async def _follow(options: Options, target: Target, tally: Tally) -> None:
    if tally.transport == "sse":
        await follow_sse(target, tally)
    elif tally.transport == "ws":
        await follow_ws(target, tally)
    else:
        await follow_poll(target, tally, options.poll_interval)


async def sign_up(url: str) -> str:
    """A fresh account for this run; its access token."""
    body = {"email": f"loadtest-{uuid.uuid4().hex[:12]}@example.com", "name": "loadtest",
            "password": uuid.uuid4().hex}  # fmt: skip
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post("/api/v1/auth/signup", json=body)
        response.raise_for_status()
        token: str = response.json()["data"]["tokens"]["accessToken"]
        return token


async def _start_tasks(options: Options, url: str, count: int) -> AsyncIterator[str]:
    """Create `count` demo tasks, 50 at a time, yielding each id as soon as it exists."""
    steps = max(1, round(options.seconds / options.step))
    body = {"steps": steps, "stepSeconds": options.step}
    headers = {"Authorization": f"Bearer {options.token}"} if options.token else {}
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as http:

        async def start() -> str:
            # a busy server may drop a connection: retry, safely, with an Idempotency-Key
            key = {"Idempotency-Key": str(uuid.uuid4())}
            for attempt in range(5):
                try:
                    response = await http.post(
                        "/api/v1/demo/tasks", json=body, headers=key, timeout=30
                    )
                    if response.status_code == 429:
                        raise SystemExit(
                            "taskstream loadtest: the server refused a task: "
                            f"{response.json()['error']['message']}. Its per-user limits "
                            "(for the load's unverified account: TASKSTREAM_MAX_TASKS_IN_"
                            "FLIGHT_UNVERIFIED, _MAX_TASKS_PER_HOUR_UNVERIFIED, "
                            "_MAX_STREAMS_PER_USER, _MAX_RUNNING_PER_USER) must admit the "
                            "load, or use --share"
                        )
                    response.raise_for_status()
                    task_id: str = response.json()["data"]["taskId"]
                    return task_id
                except httpx.TransportError:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.5 * (attempt + 1))
            raise AssertionError("unreachable")

        for i in range(0, count, 50):
            for task_id in await asyncio.gather(*(start() for _ in range(min(50, count - i)))):
                yield task_id


async def _storm(tallies: list[Tally], at: float) -> float:
    """Drop every open connection at once; the time until every stream is open again."""
    await asyncio.sleep(at)
    dropped = [t for t in tallies if t.drop is not None and not t.done]
    began = time.time()
    for tally in dropped:
        assert tally.drop is not None
        tally.back_at = None
        tally.stormed = True
        tally.drop()
    while any(not t.done and not t.failed and t.back_at is None for t in dropped):
        await asyncio.sleep(0.05)
    back = [t.back_at or began for t in dropped]
    return max(back, default=began) - began


async def _tick(tallies: list[Tally], started: float, options: Options, probe: Probe) -> None:
    """A line a second on stderr (each process's, when spread): connected, done, events/s,
    errors; the most streams open, and the server's peak RSS."""
    last = 0
    part = "" if options.part is None else f" p{options.part}"
    while True:
        await asyncio.sleep(1)
        probe.sample(sum(t.connected and not t.done for t in tallies))
        received = sum(t.received for t in tallies)
        if not options.quiet:
            connected = sum(t.connected for t in tallies)
            print(
                f"[{time.time() - started:5.0f}s{part}] connected {connected}"
                f"  done {sum(t.done for t in tallies)}/{len(tallies)}"
                f"  events/s {received - last}  errors {sum(bool(t.failed) for t in tallies)}",
                file=sys.stderr,
                flush=True,
            )
        last = received
