"""How soon a logout ends the login's open streams, across web processes.

Starts Valkey, two web processes and a worker. Each round signs in (a new login), opens
the all-tasks SSE stream and a WebSocket subscribed to a running task on web A, logs out
through web B, and times logout → the SSE `revoked` event and → the WebSocket's 4403.

    .venv/bin/python -m bench.revocation --rounds 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets

from bench.common import ready_user, server_env
from taskstream.embedded import Valkey, free_port

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "benchmark password"


async def one_round(a: str, b: str, email: str) -> tuple[float, float]:
    async with httpx.AsyncClient(timeout=30) as http:
        login = await http.post(
            f"{b}/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        auth = {"Authorization": f"Bearer {login.json()['data']['tokens']['accessToken']}"}
        task = await http.post(f"{a}/api/v1/demo/tasks", json={"steps": 100}, headers=auth)
        task_id = task.json()["data"]["taskId"]
        url = a.replace("http://", "ws://") + "/api/v1/ws"
        async with (
            http.stream("GET", f"{a}/api/v1/events", headers=auth) as sse,
            websockets.connect(url, additional_headers=auth) as ws,
        ):
            lines = sse.aiter_lines()
            async for line in lines:
                if line.startswith("event:"):
                    break
            await ws.send(json.dumps({"type": "subscribe", "taskId": task_id}))
            while json.loads(await ws.recv())["event"] != "status":
                pass
            started = time.perf_counter()
            await http.post(f"{b}/api/v1/auth/logout", headers=auth)

            async def sse_ended() -> float:
                async for line in lines:
                    if line == "event: revoked":
                        return time.perf_counter() - started
                raise AssertionError("the stream ended without `revoked`")

            async def ws_closed() -> float:
                try:
                    while True:
                        await ws.recv()
                except websockets.ConnectionClosed as closed:
                    assert closed.rcvd is not None and closed.rcvd.code == 4403
                    return time.perf_counter() - started

            sse_s, ws_s = await asyncio.gather(sse_ended(), ws_closed())
            return sse_s, ws_s


async def bench(rounds: int) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="taskstream-bench-"))
    valkey = Valkey(workdir / "valkey")
    valkey.start()
    env = server_env(valkey.url, TASKSTREAM_RATE_LOGIN_PER_CLIENT="1000000")
    ports = [free_port(), free_port()]
    log = (workdir / "servers.log").open("wb")
    processes = [
        subprocess.Popen([sys.executable, "-m", "taskstream.cli", "web", "--port", str(port)],
                         env=env, cwd=ROOT, stdout=log, stderr=log)
        for port in ports
    ] + [subprocess.Popen([sys.executable, "-m", "taskstream.cli", "worker"],
                          env=env, cwd=ROOT, stdout=log, stderr=log)]  # fmt: skip
    try:
        a, b = (f"http://127.0.0.1:{port}" for port in ports)
        await ready_user(a)
        await ready_user(b)
        email = f"bench-{time.time_ns()}@example.com"
        async with httpx.AsyncClient(timeout=30) as http:
            body = {"email": email, "password": PASSWORD, "name": "bench"}
            assert (await http.post(f"{a}/api/v1/auth/signup", json=body)).status_code == 201
        times = [await one_round(a, b, email) for _ in range(rounds)]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(15)
        valkey.stop()
    report: dict[str, object] = {"rounds": rounds}
    for index, name in enumerate(("sse_revoked_ms", "ws_closed_ms")):
        ms = sorted(t[index] * 1000 for t in times)
        report[name] = {
            "p50": round(statistics.median(ms), 1),
            "p90": round(ms[int(0.9 * (len(ms) - 1))], 1),
            "max": round(ms[-1], 1),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    print(json.dumps(asyncio.run(bench(parser.parse_args().rounds)), indent=2))


if __name__ == "__main__":
    main()
