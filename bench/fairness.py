"""How long one user's task waits while many other accounts fill the queue, with fair
dispatch on and off (ARQ's own order, first come first served), in one run:

    python -m bench.fairness [--accounts 60] [--tasks 20] [--slots 20] [--seconds 1]

Each of `--accounts` noisy accounts queues `--tasks` demo tasks of `--seconds` each (all
queued at once, as a script would); a worker with `--slots` slots runs them. Then the
victim, a fresh account, starts one task; its wait is the time from its creation to its
start (Redis's clock, as the task record has them). A deployment per setting: a Valkey, a
web process and a worker of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import httpx

from bench.common import server_env, wait_ready
from taskstream.embedded import Valkey, free_port
from taskstream.loadtest import sign_up

ROOT = Path(__file__).resolve().parent.parent


async def start(http: httpx.AsyncClient, token: str, seconds: float) -> str:
    body = {"steps": 4, "stepSeconds": seconds / 4}
    headers = {"Authorization": f"Bearer {token}"}
    answer = await http.post("/api/v1/demo/tasks", json=body, headers=headers)
    answer.raise_for_status()
    task_id: str = answer.json()["data"]["taskId"]
    return task_id


async def victims_wait(url: str, accounts: int, tasks: int, seconds: float) -> float:
    """The victim's wait (s), once the noisy accounts have queued everything."""
    tokens = await asyncio.gather(*(sign_up(url) for _ in range(accounts)))
    victim = await sign_up(url)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for _ in range(tasks):  # round by round, every account's next task
            await asyncio.gather(*(start(http, token, seconds) for token in tokens))
        task_id = await start(http, victim, seconds)
        headers = {"Authorization": f"Bearer {victim}"}
        while True:
            answer = await http.get(f"/api/v1/tasks/{task_id}/status", headers=headers)
            status = answer.json()["data"]
            if status.get("startedAt"):
                break
            await asyncio.sleep(0.05)
    made, began = (datetime.fromisoformat(status[k]) for k in ("createdAt", "startedAt"))
    return (began - made).total_seconds()


def measure(fair: str, args: argparse.Namespace, workdir: Path) -> float:
    valkey = Valkey(workdir / f"valkey-{fair}")
    valkey.start()
    port = free_port()
    env = server_env(
        valkey.url,
        TASKSTREAM_FAIR_DISPATCH=fair,
        TASKSTREAM_WORKER_MAX_JOBS=str(args.slots),
        TASKSTREAM_DEMO_MAX_SECONDS=str(max(300, args.seconds)),
    )
    log = (workdir / f"servers-{fair}.log").open("ab")
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "taskstream.cli", *command],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )  # fmt: skip
        for command in (["web", "--port", str(port)], ["worker"])
    ]
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        return asyncio.run(victims_wait(url, args.accounts, args.tasks, args.seconds))
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
        valkey.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=60)
    parser.add_argument("--tasks", type=int, default=20, help="each noisy account's")
    parser.add_argument("--slots", type=int, default=20, help="the worker's")
    parser.add_argument("--seconds", type=float, default=1.0, help="each task's length")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskstream-fairness-") as workdir:
        waits = {fair: measure(fair, args, Path(workdir)) for fair in ("off", "on")}
    queued = args.accounts * args.tasks
    print(f"{args.accounts} noisy accounts x {args.tasks} tasks of {args.seconds:g} s "
          f"({queued} queued), {args.slots} worker slots: the victim's task waited")  # fmt: skip
    print(f"  first come, first served (TASKSTREAM_FAIR_DISPATCH=off): {waits['off']:7.2f} s")
    print(f"  fair dispatch (on, the default):                         {waits['on']:7.2f} s")
    if waits["on"] > 0:
        print(f"  ratio off/on: {waits['off'] / waits['on']:.0f}x")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
