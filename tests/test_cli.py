"""`taskstream up` on a machine with nothing running: Valkey, worker and web in one go."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from redis import Redis as SyncRedis

from jobs.infra.config import ConfigError, Settings
from taskstream.embedded import free_port
from tests.support import ROOT, WAIT, Account, collect, signup, start_demo, wait_for_task


async def read_until(process: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    assert process.stdout is not None
    async with asyncio.timeout(WAIT):
        while True:
            line = await asyncio.to_thread(process.stdout.readline)
            assert line, "taskstream up exited early"
            if match := re.search(pattern, line):
                return match


def up(data_dir: Path, port: int, *flags: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    return subprocess.Popen(
        [sys.executable, "-m", "taskstream.cli", "up", "--port", str(port), *flags],
        env={**env, "TASKSTREAM_DATA_DIR": str(data_dir)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


async def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(process.wait, WAIT)
    assert process.stdout is not None
    process.stdout.close()
    return code


async def assert_kept_across_a_restart(
    data_dir: Path, port: int, user: Account, task_id: str, *flags: str
) -> None:
    again = up(data_dir, port, *flags)
    try:
        url = (await read_until(again, r"ready at (http://\S+)")).group(1)
        async with httpx.AsyncClient(base_url=url, headers=user.headers) as http:
            kept = await http.get(f"/api/v1/tasks/{task_id}/status")
            assert kept.json()["data"]["status"] == "completed"
    finally:
        assert await stop(again) == 0


async def test_up_serves_a_demo_task_and_keeps_it_across_a_restart(tmp_path: Path):
    port = free_port()
    first = up(tmp_path, port)
    try:
        url = (await read_until(first, r"ready at (http://\S+)")).group(1)
        async with httpx.AsyncClient(base_url=url) as http:
            page = await http.get("/")
            assert page.status_code == 200 and "<title>Taskstream" in page.text
            user = await signup(http)
            http.headers.update(user.headers)
            task_id = await start_demo(http, steps=3, stepSeconds=0.05)
            # the verification mail is caught locally, and its link works
            mail_task = f"/api/v1/auth/email-tasks/{user.signup_task}/status"
            await wait_for_task(
                http, user.signup_task, lambda d: d["status"] == "completed", url=mail_task
            )
            mailbox = (await http.get("/dev/mail")).text
            assert user.email in mailbox and "이메일 주소를 확인해 주세요" in mailbox
            link = re.search(rf'href="({re.escape(url)}/verify-email\?token=([\w-]+))"', mailbox)
            assert link is not None, mailbox
            assert (await http.get(link.group(1))).status_code == 200
            verified = await http.post("/api/v1/auth/verify-email", json={"token": link.group(2)})
            assert verified.json()["data"]["emailVerified"] is True
            events = await collect(http, f"/api/v1/tasks/{task_id}/events")
            assert events[-1].event == "completed"
    finally:
        assert await stop(first) == 0
    assert (tmp_path / "valkey" / "appendonlydir").is_dir()

    await assert_kept_across_a_restart(tmp_path, port, user, task_id)


async def test_up_with_cluster_keeps_the_task_streams_on_a_local_cluster_across_a_restart(
    tmp_path: Path,
):
    port = free_port()
    first = up(tmp_path, port, "--cluster")
    try:
        single = (await read_until(first, r"started Valkey at (redis://\S+)")).group(1)
        nodes = (await read_until(first, r"Valkey Cluster .* at (redis\+cluster://\S+)")).group(1)
        url = (await read_until(first, r"ready at (http://\S+)")).group(1)
        async with httpx.AsyncClient(base_url=url) as http:
            user = await signup(http)
            http.headers.update(user.headers)
            task_id = await start_demo(http, steps=3, stepSeconds=0.05)
            events = await collect(http, f"/api/v1/tasks/{task_id}/events")
            assert events[-1].event == "completed"
        with SyncRedis(host="127.0.0.1", port=int(nodes.split(",")[0].rpartition(":")[2])) as node:
            assert "cluster_state:ok" in node.execute_command("CLUSTER", "INFO").decode()
        # the record is on the cluster, not on the Valkey of REDIS_URL
        with SyncRedis.from_url(single) as control:
            assert not control.keys("ts:{*}:task")
    finally:
        assert await stop(first) == 0

    await assert_kept_across_a_restart(tmp_path, port, user, task_id, "--cluster")


def child_of(parent: int, command: str) -> int:
    """The pid of `parent`'s child whose command line holds `command`."""
    for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        if command in Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " "):
            return int(pid)
    raise AssertionError(f"no child of {parent} runs {command!r}")


async def until_ready(http: httpx.AsyncClient) -> None:
    """Until /readyz says the process and its hub reach Redis (a bounded wait)."""
    async with asyncio.timeout(WAIT):
        while True:
            ready = await http.get("/readyz")
            if ready.status_code == 200 and ready.json()["data"]["hubConnected"]:
                return
            await asyncio.sleep(0.1)


async def test_up_starts_a_killed_worker_and_valkey_again_and_stops_only_when_told(
    tmp_path: Path,
):
    port = free_port()
    running = up(tmp_path, port)
    try:
        url = (await read_until(running, r"ready at (http://\S+)")).group(1)
        async with httpx.AsyncClient(base_url=url, timeout=WAIT) as http:
            http.headers.update((await signup(http)).headers)
            for name, command in (("the worker", "cli worker"), ("Valkey", "valkey-server")):
                os.kill(child_of(running.pid, command), signal.SIGKILL)
                await read_until(running, rf"{name} exited \(-9\); starting it again")
                await read_until(running, rf"{name} started again")
                await until_ready(http)  # the hub relinks in its own time (503 meanwhile)
                # the whole deployment works again: a task runs to its end, followed live
                task_id = await start_demo(http, steps=3, stepSeconds=0.05)
                events = await collect(http, f"/api/v1/tasks/{task_id}/events")
                assert events[-1].data["status"] == "completed", (name, events)
    finally:
        assert await stop(running) == 0


def web_at_start_up(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`taskstream web` with `env` (and `args`), expected to stop before it serves."""
    return subprocess.run(
        [sys.executable, "-m", "taskstream.cli", "web", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip


def test_web_without_redis_url_stops_at_start_up_with_a_clear_message():
    done = web_at_start_up({k: v for k, v in os.environ.items() if k != "REDIS_URL"})
    assert done.returncode == 1
    assert "REDIS_URL is not set" in done.stderr


@pytest.mark.parametrize(
    ("name", "url", "says"),
    [
        (
            "REDIS_URL",
            "redis+cluster://127.0.0.1:7000",
            "give the cluster as TASKSTREAM_STREAMS_URL",
        ),
    ],
)
def test_a_store_that_cannot_hold_what_it_is_given_stops_the_start_and_says_why(
    name: str, url: str, says: str
):
    done = web_at_start_up({**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0", name: url})
    assert done.returncode == 1
    assert says in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [("TASKSTREAM_RETENTION_SECONDS", "a day"), ("TASKSTREAM_TIMEOUT_DEMO", "-1")],
)
def test_a_malformed_setting_names_the_variable(name: str, value: str):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({"REDIS_URL": "redis://localhost", name: value})


@pytest.mark.parametrize(
    "key",
    [
        "a" * 64,
        "ab" * 40,
        "changeme" * 8,
        "0123456789abcdef" * 2,
        "Tr0ub4dor&3-Tr0ub4dor&3",
        "Password1!" * 4,
        "abcdefgh" * 8,
        "0123456789abcdef" * 4,
        "password" + "5260181590830166131860913909960308246281948219935181909378657975",
        "correct-horse-battery-staple-" * 2 + "2024",
    ],
    ids=[
        "one-letter",
        "two-letters",
        "a-word-repeated",
        "128-bit-hex",
        "a-password",
        "a-password-repeated",
        "a-run-repeated",
        "a-sequence-repeated",
        "a-word-and-digits",
        "a-passphrase",
    ],  # fmt: skip
)
def test_a_weak_signing_key_is_refused_with_how_to_make_one(key: str):
    with pytest.raises(ConfigError, match="too weak.*token_urlsafe"):
        Settings.from_env({"REDIS_URL": "redis://localhost", "TASKSTREAM_SECRET_KEY": key})


@pytest.mark.parametrize("make", [lambda: secrets.token_urlsafe(48), lambda: secrets.token_hex(48)])
def test_a_random_key_made_as_the_docs_say_is_taken(make: Callable[[], str]):
    key = make()
    settings = Settings.from_env({"REDIS_URL": "redis://localhost", "TASKSTREAM_SECRET_KEY": key})
    assert settings.require_secret() == key


def test_web_with_a_weak_key_stops_at_start_up_and_says_so():
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0", "TASKSTREAM_SECRET_KEY": "a" * 32}
    done = web_at_start_up(env)
    assert done.returncode == 1
    assert "TASKSTREAM_SECRET_KEY is too weak" in done.stderr


def test_an_empty_environment_gives_the_settings_stated_defaults():
    assert Settings.from_env({}) == Settings(redis_url=None)
