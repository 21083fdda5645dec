"""`taskstream web --processes N`: N web processes on one port, kept running, stopped
together. (A child SIGKILLed while its streams run: the fault matrix's `web-child-kill`.)"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from taskstream.loadtest.report import children
from tests.support import WAIT, Proc, SseStream, start_demo


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited: nobody reaped it yet


async def gone(pids: list[int]) -> None:
    async with asyncio.timeout(WAIT):
        while any(alive(pid) for pid in pids):
            await asyncio.sleep(0.05)


async def test_sigterm_drains_every_process_at_once(
    private: Callable[..., Proc], auth: dict[str, str]
):
    """Every stream, whichever process holds it, is told to reconnect; each process ends
    its own shutdown (none is killed at the end of a grace time); the parent exits 0."""
    web = private("web", TASKSTREAM_WEB_PROCESSES="2")
    private("worker")
    assert web.process is not None
    pids = children(web.process.pid)
    assert len(pids) == 2
    async with httpx.AsyncClient(base_url=web.url, headers=auth, timeout=WAIT) as http:
        task_id = await start_demo(http, steps=200, stepSeconds=0.1)
        url = f"/api/v1/tasks/{task_id}/events"
        # 16 connections: the kernel spreads them over both processes' sockets by a hash
        # of the client's port (all on one: a chance of 1 in 32,768)
        streams = [SseStream(http, url) for _ in range(16)]
        for sse in streams:
            await sse.__aenter__()
            await sse.next()
        web.process.send_signal(signal.SIGTERM)
        tails = await asyncio.gather(*(sse.rest() for sse in streams))
        for sse in streams:
            await sse.__aexit__()
    assert await asyncio.to_thread(web.process.wait, WAIT) == 0
    assert all(tail[-1].event == "reconnect" for tail in tails)
    await gone(pids)
    log = web.log.read_text()
    assert all(f"Finished server process [{pid}]" in log for pid in pids), log[-3000:]


async def test_the_processes_stop_when_their_parent_is_killed(private: Callable[..., Proc]):
    web = private("web", TASKSTREAM_WEB_PROCESSES="2")
    assert web.process is not None
    pids = children(web.process.pid)
    web.process.kill()
    web.process.wait()
    await gone(pids)  # else they would hold the port against the next start


async def test_a_process_that_dies_is_started_again_on_the_same_port(
    private: Callable[..., Proc],
):
    web = private("web", TASKSTREAM_WEB_PROCESSES="2")
    assert web.process is not None
    first, second = children(web.process.pid)
    os.kill(first, signal.SIGKILL)
    async with asyncio.timeout(WAIT):
        while len(now := children(web.process.pid)) < 2 or first in now:
            await asyncio.sleep(0.05)
    assert second in now
    assert "web process 0 exited (-9); starting it again" in web.log.read_text()
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        for _ in range(8):  # each on a new connection: both processes answer
            assert (await http.get("/readyz", headers={"Connection": "close"})).status_code == 200


def test_fewer_than_one_process_is_refused():
    run = subprocess.run(
        [sys.executable, "-m", "taskstream.cli", "web", "--processes", "0"],
        capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip
    assert run.returncode != 0
    assert "--processes must be at least 1, got 0" in run.stderr
