"""What every benchmark's servers share: their environment."""

from __future__ import annotations

import asyncio
import os
import secrets
import time

import httpx
import jwt

from taskstream.loadtest import sign_up


def server_env(redis_url: str, **extra: str) -> dict[str, str]:
    """Web and worker settings for a bench run: one signing key for the run, and the
    per-client and per-user limits out of the way (one load generator, one user)."""
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "TASKSTREAM_SECRET_KEY": secrets.token_urlsafe(48),
        "TASKSTREAM_RATE_SIGNUP_PER_CLIENT": "1000000",
        "TASKSTREAM_MAX_WAITING_CONNECTIONS_PER_CLIENT": "1000000",  # storms of opens
        # the load generator is one user with thousands of streams and tasks
        "TASKSTREAM_MAX_STREAMS_PER_USER": "1000000",
        "TASKSTREAM_MAX_TASKS_IN_FLIGHT_PER_USER": "1000000",
        "TASKSTREAM_MAX_TASKS_IN_FLIGHT_UNVERIFIED": "1000000",
        "TASKSTREAM_MAX_TASKS_PER_HOUR_PER_USER": "1000000",
        "TASKSTREAM_MAX_TASKS_PER_HOUR_UNVERIFIED": "1000000",
        "TASKSTREAM_MAX_RUNNING_PER_USER": "1000000",
        # a bench's web process is one process, its pid the one measured, unless it says
        "TASKSTREAM_WEB_PROCESSES": "1",
        **extra,
    }


def wait_ready(url: str, timeout: float = 30) -> None:
    """Until the web process at `url` answers /readyz (a bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not become ready in {timeout:g} s")


def pin(server_pids: list[int], other_pids: list[int], server_cores: int = 1) -> str:
    """With `--cpus`: the servers measured on the first `server_cores` cores, the other
    processes named (Valkey, load generators) on the rest, so that a server's figures are
    its own cores'. A caller that names itself passes its affinity on to the processes it
    starts later. Returns how it pinned, for the report ("" when the machine has no core
    to spare)."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) <= server_cores:
        return ""
    mine, rest = set(cores[:server_cores]), set(cores[server_cores:])
    for pid in server_pids:
        os.sched_setaffinity(pid, mine)
    for pid in other_pids:
        os.sched_setaffinity(pid, rest)
    return f"servers on cores {sorted(mine)}, the rest on {sorted(rest)}"


async def ready_user(base: str) -> tuple[str, str]:
    """Once the web process at `base` answers /readyz: a new user's (access token, id)."""
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            try:
                if (await http.get(f"{base}/readyz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    token = await sign_up(base)
    user_id: str = jwt.decode(token, options={"verify_signature": False})["sub"]
    return token, user_id


async def wait_listening(port: int) -> None:
    """Until a server accepts connections on `port` (once its lifespan has started)."""
    for _ in range(400):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError(f"nothing listens on port {port}")
