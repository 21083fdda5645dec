"""What a user's history costs the task list and a fresh all-tasks stream, in one run:

    python -m bench.listing [--small 10] [--large 2000] [--reads 50]

One user with `--small` finished tasks, another with `--large` (records written straight
into the store), each with one task running; for each, the median time of `GET
/api/v1/tasks?limit=20` and of opening `GET /api/v1/events` to its first event.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench.common import server_env, wait_ready
from jobs.infra.config import Settings
from jobs.infra.connections import connect
from jobs.record.tasks import TaskStore
from taskstream.embedded import Valkey, free_port

ROOT = Path(__file__).resolve().parent.parent


async def user_with(http: httpx.AsyncClient, store: TaskStore, history: int) -> dict[str, str]:
    email = f"bench-{time.monotonic_ns()}@example.com"
    body = {"email": email, "password": "a long enough one", "name": "bench"}
    data = (await http.post("/api/v1/auth/signup", json=body)).json()["data"]
    owner = data["user"]["id"]
    for _ in range(history):
        task = await store.create("demo", owner=owner)
        await store.fail(task.id, "X", "done with")
    await store.create("demo", owner=owner)  # one still pending
    return {"Authorization": f"Bearer {data['tokens']['accessToken']}"}


async def timed(reads: int, act: Callable[[], Awaitable[None]]) -> float:
    times = []
    for _ in range(reads):
        began = time.perf_counter()
        await act()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


async def measure(url: str, redis_url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    settings = Settings.from_env({"REDIS_URL": redis_url})
    redis = connect(redis_url, "taskstream:bench")
    store = TaskStore(redis, settings)
    found: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for size in (args.small, args.large):
            headers = await user_with(http, store, size)

            async def listing(headers: dict[str, str] = headers) -> None:
                (await http.get("/api/v1/tasks?limit=20", headers=headers)).raise_for_status()

            async def stream(headers: dict[str, str] = headers) -> None:
                async with http.stream("GET", "/api/v1/events", headers=headers) as answer:
                    async for line in answer.aiter_lines():
                        if line.startswith("data:"):
                            return

            found[str(size)] = [await timed(args.reads, listing), await timed(args.reads, stream)]
    await redis.aclose()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskstream-listing-") as workdir:
        valkey = Valkey(Path(workdir) / "valkey")
        valkey.start()
        port = free_port()
        with (Path(workdir) / "web.log").open("ab") as log:
            web = subprocess.Popen(
                [sys.executable, "-m", "taskstream.cli", "web", "--port", str(port)],
                env=server_env(valkey.url), cwd=ROOT, stdout=log, stderr=log,
            )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url)
            found = asyncio.run(measure(url, valkey.url, args))
        finally:
            web.send_signal(signal.SIGTERM)
            web.wait(30)
            valkey.stop()
    small, large = found[str(args.small)], found[str(args.large)]
    print(f"median of {args.reads}, ms       history {args.small:>6} {args.large:>6}   ratio")
    for index, what in enumerate(("GET /api/v1/tasks?limit=20", "GET /api/v1/events (first)")):
        ratio = large[index] / small[index]
        print(f"  {what:30} {small[index]:13.2f} {large[index]:6.2f} {ratio:7.2f}x")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
