"""`taskstream loadtest`: N concurrent clients following demo tasks on a running Taskstream.

    taskstream loadtest --url http://127.0.0.1:8000 --clients 1000 --transport sse

`--url` may name several web processes, comma-separated: the clients are dealt out over
them in turn (tasks are started through the first).

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
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import httpx

from taskstream.loadtest.clients import Tally, Target, follow_poll, follow_sse, follow_ws
from taskstream.loadtest.report import Probe, Report, summarize

TRANSPORTS = ("sse", "ws", "poll")


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


async def run(options: Options) -> Report:
    urls = options.url.split(",")
    if options.token is None:
        options = replace(options, token=await sign_up(urls[0]))
    targets = [(url, Target.from_url(url, options.token)) for url in urls]
    transports = itertools.cycle(
        TRANSPORTS if options.transport == "mixed" else [options.transport]
    )
    tallies: list[Tally] = []
    probe = Probe(options.server_pid, options.redis_url)
    await probe.start()
    started = time.time()
    followers: list[asyncio.Task[None]] = []
    storm: asyncio.Task[float] | None = None
    if options.storm_at is not None:
        storm = asyncio.create_task(_storm(tallies, options.storm_at))
    ticker = asyncio.create_task(_tick(tallies, started, options.quiet, probe))
    storm_time: float | None = None
    pause = options.ramp / options.clients
    try:
        async with asyncio.timeout(options.max_seconds):
            # each batch of tasks gets its clients at once, so every client sees its task whole
            count = math.ceil(options.clients / options.share)
            async for task_id in _start_tasks(options, urls[0], count):
                for _ in range(min(options.share, options.clients - len(tallies))):
                    tally = Tally(next(transports), task_id)
                    url, target = targets[len(tallies) % len(targets)]
                    tallies.append(tally)
                    followers.append(asyncio.create_task(_follow(options, url, target, tally)))
                    await asyncio.sleep(pause)
            await asyncio.gather(*followers)
            storm_time = await storm if storm is not None else None
    except TimeoutError:
        pass  # bounded: whoever has not finished by now is reported as such
    finally:
        for task in [*followers, ticker, *([storm] if storm else [])]:
            task.cancel()
    return summarize(options, tallies, started, time.time(), storm_time, await probe.finish())


async def _follow(options: Options, url: str, target: Target, tally: Tally) -> None:
    if tally.transport == "sse":
        await follow_sse(target, tally)
    elif tally.transport == "ws":
        await follow_ws(url, options.token, tally)
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


async def _tick(tallies: list[Tally], started: float, quiet: bool, probe: Probe) -> None:
    """A line a second on stderr: connected, done, events/s, errors; the server's peak RSS."""
    last = 0
    while True:
        await asyncio.sleep(1)
        probe.sample(sum(t.connected and not t.done for t in tallies))
        received = sum(t.received for t in tallies)
        if not quiet:
            print(
                f"[{time.time() - started:5.0f}s] connected {sum(t.connected for t in tallies)}"
                f"  done {sum(t.done for t in tallies)}/{len(tallies)}"
                f"  events/s {received - last}  errors {sum(bool(t.failed) for t in tallies)}",
                file=sys.stderr,
                flush=True,
            )
        last = received
