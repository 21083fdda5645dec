from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from redis.asyncio import Redis

from jobs.config import Settings
from jobs.tasks import TaskStore
from taskstream.embedded import Valkey
from tests.support import Proc

# Short timeouts so that timeout, retry and lost-worker cases finish in seconds.
TEST_ENV = {
    "TASKSTREAM_TIMEOUT_DEMO": "4",
    "TASKSTREAM_RETRY_BACKOFF_DEMO": "0.2",
    "TASKSTREAM_LEASE_SECONDS": "1.5",
    "TASKSTREAM_HEARTBEAT_SECONDS": "1",
    "TASKSTREAM_COALESCE_MS": "20",
    "TASKSTREAM_SYNC_WAIT_MAX_SECONDS": "20",
}


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Valkey]:
    server = Valkey(tmp_path_factory.mktemp("valkey"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def env(valkey: Valkey, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    exports = str(tmp_path_factory.mktemp("exports"))
    return {"REDIS_URL": valkey.url, "TASKSTREAM_EXPORT_DIR": exports, **TEST_ENV}


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

    def start(role: str, env: dict[str, str]) -> Proc:
        proc = Proc(role, env, logs / f"{role}-{len(started)}.log").start()
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

    def start(role: str, **extra: str) -> Proc:
        proc = spawn(role, {**env, "TASKSTREAM_QUEUE": queue, **extra})
        mine.append(proc)
        return proc

    yield start
    for proc in mine:
        proc.stop()


@pytest.fixture
async def client(web: Proc, worker: Proc) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web.url, timeout=10) as http:
        yield http


@pytest.fixture
async def redis(valkey: Valkey) -> AsyncIterator[Redis]:
    client = Redis.from_url(valkey.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def store(redis: Redis, settings: Settings) -> TaskStore:
    return TaskStore(redis, settings)
