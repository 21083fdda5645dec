"""Processes and clients the tests drive: Valkey, web, worker, and an SSE reader."""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from jobs.record import keys
from taskstream.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
WAIT = 20.0  # the bound on any single wait in a test


@dataclass(frozen=True)
class Account:
    user_id: str
    email: str
    password: str
    access: str
    refresh: str
    signup_task: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


async def signup(http: httpx.AsyncClient, **body: Any) -> Account:
    """A new account (a fresh address unless one is given)."""
    fields = {"email": f"user-{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse",
              "name": "김민지"} | body  # fmt: skip
    response = await http.post("/api/v1/auth/signup", json=fields)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    tokens = data["tokens"]
    return Account(data["user"]["id"], fields["email"], fields["password"],
                   tokens["accessToken"], tokens["refreshToken"], data["taskId"])  # fmt: skip


@dataclass
class Proc:
    """A `taskstream web` or `taskstream worker` process with its own environment; a
    role `arq:<settings>` is ARQ's own command (`arq jobs.worker.WorkerSettings`)."""

    role: str
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    open_files: int | None = None  # its open-files limit (soft and hard), set before exec

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Proc:
        args = [sys.executable, "-m", "taskstream.cli", self.role]
        if self.role.startswith("arq:"):
            args = [sys.executable, "-m", "arq", self.role.removeprefix("arq:")]
        if self.role == "web":
            args += ["--port", str(self.port)]
        limit = self.open_files

        def limited() -> None:
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                args, env={**os.environ, **self.env}, cwd=ROOT, stdout=out, stderr=out,
                preexec_fn=limited,
            )  # fmt: skip
        if self.role == "web":
            self._wait_web()
        else:
            self._wait_log("worker started")
        return self

    def _wait_web(self) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"web did not start:\n{self.log.read_text()[-3000:]}")

    def _wait_log(self, text: str) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            self._check_alive()
            if text in self.log.read_text():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.role} did not start:\n{self.log.read_text()[-3000:]}")

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.role} exited:\n{self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class SseEvent:
    id: str | None
    event: str
    data: dict[str, Any]


async def sse_events(response: httpx.Response) -> AsyncIterator[SseEvent]:
    """Parse a text/event-stream body into events (comments and `retry:` are skipped)."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                yield SseEvent(
                    fields.get("id"), fields.get("event", "message"), json.loads(fields["data"])
                )
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


async def collect(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    limit: int | None = None,
) -> list[SseEvent]:
    """Read an SSE stream until it ends (or `limit` events), bounded by WAIT."""
    received: list[SseEvent] = []
    async with asyncio.timeout(WAIT):
        async with client.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200, await response.aread()
            async for event in sse_events(response):
                received.append(event)
                if limit is not None and len(received) >= limit:
                    break
    return received


async def wait_for_task(
    client: httpx.AsyncClient,
    task_id: str,
    done: Callable[[dict[str, Any]], bool],
    *,
    url: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Poll the status endpoint (or `url`) until `done(status)` (a bounded wait)."""
    async with asyncio.timeout(WAIT):
        while True:
            response = await client.get(url or f"/api/v1/tasks/{task_id}/status", headers=headers)
            assert response.status_code == 200, response.text
            data: dict[str, Any] = response.json()["data"]
            if done(data):
                return data
            await asyncio.sleep(0.02)


async def wait_for_status(
    client: httpx.AsyncClient, task_id: str, wanted: set[str]
) -> dict[str, Any]:
    return await wait_for_task(client, task_id, lambda data: data["status"] in wanted)


async def start_demo(client: httpx.AsyncClient, **body: Any) -> str:
    response = await client.post("/api/v1/demo/tasks", json=body)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["data"]["taskId"]
    return task_id


class SseStream:
    """An open SSE stream read one event at a time, every wait bounded."""

    def __init__(self, client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None):
        self._context = client.stream("GET", url, headers=headers)

    async def __aenter__(self) -> SseStream:
        self.response = await self._context.__aenter__()
        assert self.response.status_code == 200, await self.response.aread()
        self._events = sse_events(self.response)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._context.__aexit__(None, None, None)

    async def next(self) -> SseEvent:
        async with asyncio.timeout(WAIT):
            return await anext(self._events)

    async def take(self, count: int) -> list[SseEvent]:
        return [await self.next() for _ in range(count)]

    async def rest(self) -> list[SseEvent]:
        """Every event until the server ends the stream."""
        async with asyncio.timeout(WAIT):
            return [event async for event in self._events]


class WsClient:
    """A WebSocket client on `/api/v1/ws` whose every wait is bounded."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        self.url = base_url.replace("http://", "ws://") + "/api/v1/ws"
        self.headers = headers

    async def __aenter__(self) -> WsClient:
        import websockets

        self.socket = await websockets.connect(self.url, additional_headers=self.headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.socket.close()

    async def send(self, **frame: Any) -> None:
        await self.socket.send(json.dumps(frame))

    async def next(self) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            frame: dict[str, Any] = json.loads(await self.socket.recv())
            return frame

    async def until(self, event: str, task_id: str | None = None) -> list[dict[str, Any]]:
        """Frames up to and including the first `event` (for `task_id`, when given)."""
        frames = []
        while True:
            frame = await self.next()
            frames.append(frame)
            task = frame.get("taskId") or frame.get("data", {}).get("taskId")
            if frame["event"] == event and (task_id is None or task == task_id):
                return frames


async def assert_no_gap(redis: Any, task_id: str, received: Sequence[str | None]) -> None:
    """After the first (a snapshot's) id, `received` is exactly the task's event log."""
    log = [eid for eid, _ in await redis.xrange(keys.events(task_id))]
    assert received[1:] == log[log.index(received[0]) + 1 :]


def own_metric(text: str, pid: int, name: str, **labels: str) -> float | None:
    """What the web process `pid` reports of itself as `name` with `labels` in a /metrics
    text (each web process's figures are labelled `process="<host>:<pid>"`); None if not
    there."""
    wanted = {"process": f"{socket.gethostname()}:{pid}", **labels}
    inner = ",".join(f'{k}="{v}"' for k, v in wanted.items())
    found = re.search(rf"^{name}{{{re.escape(inner)}}} (\S+)$", text, re.MULTILINE)
    return None if found is None else float(found[1])
