from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from redis.asyncio import Redis

from jobs.infra.config import Settings
from jobs.infra.connections import Client
from jobs.record.tasks import TaskStore
from jobs.record.values import Task
from taskstream.embedded import Valkey, free_port
from tests.smtp import MailServer
from tests.support import WAIT, Account, Proc, signup

# Short timeouts so that timeout, retry and lost-worker cases finish in seconds.
TEST_ENV = {
    "TASKSTREAM_TIMEOUT_DEMO": "4",
    "TASKSTREAM_RETRY_BACKOFF_DEMO": "0.2",
    "TASKSTREAM_LEASE_SECONDS": "1.5",
    "TASKSTREAM_HEARTBEAT_SECONDS": "1",
    "TASKSTREAM_COALESCE_MS": "20",
    "TASKSTREAM_SYNC_WAIT_MAX_SECONDS": "20",
    "TASKSTREAM_RETRY_BACKOFF_EMAIL": "0.2",
    "TASKSTREAM_SECRET_KEY": "5HUyj17lfC0ho72urVRckBYmsNw-kpWX_EY1Gb_JxUFptNKfHLROlzDbV1KoVbYr",
    "TASKSTREAM_PUBLIC_URL": "http://app.test",
    "TASKSTREAM_EXTRA_KINDS": "tests.countdown_kind",  # a kind of the suite's own
    # one process per `web`, whose pid and log are the process's (several: test_processes)
    "TASKSTREAM_WEB_PROCESSES": "1",
    # the suite's user runs hundreds of tasks and streams: per-user limits are tested alone
    "TASKSTREAM_MAX_STREAMS_PER_USER": "100000",
    "TASKSTREAM_MAX_TASKS_IN_FLIGHT_PER_USER": "100000",
    "TASKSTREAM_MAX_TASKS_IN_FLIGHT_UNVERIFIED": "100000",
    "TASKSTREAM_MAX_TASKS_PER_HOUR_PER_USER": "100000",
    "TASKSTREAM_MAX_TASKS_PER_HOUR_UNVERIFIED": "100000",
    "TASKSTREAM_MAX_RUNNING_PER_USER": "100000",
    "TASKSTREAM_MAX_SIMULATION_CELLS": "6000000",  # the API's own bound: 50,000 × 120
    # every test connects from 127.0.0.1: the per-client limits are tested on their own
    "TASKSTREAM_MAX_WAITING_CONNECTIONS_PER_CLIENT": "100000",
    **{f"TASKSTREAM_RATE_{a}_PER_CLIENT": "100000" for a in ("SIGNUP", "LOGIN", "RESEND", "RESET")},
}


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Valkey]:
    server = Valkey(tmp_path_factory.mktemp("valkey"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[Valkey]:
    """A Valkey of this test alone, to stop and start (requested before `private`: stopped
    after)."""
    server = Valkey(tmp_path / "valkey")
    server.start()
    yield server
    server.stop()


CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3-compatible server (moto's, in server mode, a process of its own): its
    endpoint. Buckets are made by `new_bucket`."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=out,
        )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(int(WAIT / 0.05)):
            try:
                httpx.get(endpoint + "/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if server.poll() is not None:
                    raise RuntimeError(log.read_text()) from None
                time.sleep(0.05)
        yield endpoint
    finally:
        server.terminate()
        server.wait(WAIT)


def new_bucket(endpoint: str, name: str) -> None:
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )  # fmt: skip
    client.create_bucket(Bucket=name)


@pytest.fixture(scope="session")
def smtp() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def env(
    valkey: Valkey, smtp: MailServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    return {
        "REDIS_URL": valkey.url,
        "TASKSTREAM_EXPORT_DIR": str(tmp_path_factory.mktemp("exports")),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        **TEST_ENV,
    }


@pytest.fixture(scope="session")
def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


@pytest.fixture(scope="session")
def spawn(
    tmp_path_factory: pytest.TempPathFactory, valkey: Valkey
) -> Iterator[Callable[..., Proc]]:
    """Start web/worker processes; every one still running is stopped at the end,
    before Valkey (hence the `valkey` argument)."""
    started: list[Proc] = []
    logs = tmp_path_factory.mktemp("logs")

    def start(role: str, env: dict[str, str], open_files: int | None = None) -> Proc:
        log = logs / f"{role}-{len(started)}.log"
        proc = Proc(role, env, log, open_files=open_files).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def web(spawn: Callable[..., Proc], env: dict[str, str]) -> Proc:
    return spawn("web", env)


@pytest.fixture(scope="session")
def worker(spawn: Callable[..., Proc], env: dict[str, str]) -> Proc:
    return spawn("worker", env)


@pytest.fixture
def private(
    spawn: Callable[..., Proc], env: dict[str, str], request: pytest.FixtureRequest
) -> Iterator[Callable[..., Proc]]:
    """Processes of this test alone, on a queue of their own, stopped when it ends."""
    mine: list[Proc] = []
    queue = f"taskstream:test:{request.node.name}"

    def start(role: str, open_files: int | None = None, **extra: str) -> Proc:
        proc = spawn(role, {**env, "TASKSTREAM_QUEUE": queue, **extra}, open_files)
        mine.append(proc)
        return proc

    yield start
    for proc in mine:
        proc.stop()


def own_deployment(env_fixture: str) -> tuple[Any, Any, Any, Any]:
    """Module-scoped `web`, `worker`, `account` and `auth` for processes started with the
    environment the fixture `env_fixture` gives: a module's own deployment (on a cluster, with
    a bucket). Assign them to those names in the module, over the suite's."""

    @pytest.fixture(scope="module", name="web")
    def own_web(spawn: Callable[..., Proc], request: pytest.FixtureRequest) -> Iterator[Proc]:
        proc = spawn("web", request.getfixturevalue(env_fixture))
        yield proc
        proc.stop()

    @pytest.fixture(scope="module", name="worker")
    def own_worker(spawn: Callable[..., Proc], request: pytest.FixtureRequest) -> Iterator[Proc]:
        proc = spawn("worker", request.getfixturevalue(env_fixture))
        yield proc
        proc.stop()

    @pytest.fixture(scope="module", name="account")
    async def own_account(web: Proc) -> Account:
        async with httpx.AsyncClient(base_url=web.url, timeout=10) as anonymous:
            return await signup(anonymous)

    @pytest.fixture(scope="module", name="auth")
    def own_auth(account: Account) -> dict[str, str]:
        return account.headers

    return own_web, own_worker, own_account, own_auth


@pytest.fixture(scope="session")
async def account(web: Proc) -> Account:
    """The suite's user: most tests act as them."""
    async with httpx.AsyncClient(base_url=web.url, timeout=10) as http:
        return await signup(http)


@pytest.fixture(scope="session")
def auth(account: Account) -> dict[str, str]:
    return account.headers


@pytest.fixture(scope="module")
async def stranger(web: Proc) -> Account:
    """Another user: what is the suite's user's is not theirs."""
    async with httpx.AsyncClient(base_url=web.url, timeout=10) as http:
        return await signup(http)


@pytest.fixture
async def client(web: Proc, worker: Proc, auth: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web.url, timeout=10, headers=auth) as http:
        yield http


@pytest.fixture
async def redis(valkey: Valkey) -> AsyncIterator[Redis]:
    client = Redis.from_url(valkey.url, decode_responses=True)
    yield client
    await client.aclose()


class SuiteStore(TaskStore):
    """A TaskStore whose new tasks belong to the suite's user unless told otherwise, so
    that tests can make records by hand and follow them over HTTP as that user."""

    def __init__(
        self, redis: Redis, settings: Settings, owner: str, records: Client | None = None
    ) -> None:
        super().__init__(redis, settings, records)
        self.owner = owner

    async def create(self, kind: str, *, owner: str | None = None, **fields: Any) -> Task:
        return await super().create(kind, owner=self.owner if owner is None else owner, **fields)


@pytest.fixture
def store(redis: Redis, settings: Settings, account: Account) -> TaskStore:
    return SuiteStore(redis, settings, account.user_id)
