"""Redis clients that ride out a short outage (a restart, a fail-over) instead of failing.

Commands that hit a dropped connection are retried with exponential backoff for about
half a minute. A retried task write may, rarely, append its event twice (the first try
ran, its reply was lost); readers drop nothing for it, and terminal states stay final.

`REDIS_URL` names one server (`redis://host:6379/0`), or a primary watched by Sentinel:
`redis+sentinel://[:password@]host:26379,host:26380/<master name>[/db]`. Then every
client asks the sentinels where the primary is, and asks again after a fail-over.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

RETRY_ON = [ConnectionError, TimeoutError, OSError]


def _retry(sentinel: bool = False) -> Retry:
    # through Sentinel, a connection retries inside each of its own retries (redis-py asks
    # the sentinels again only between outer tries): a short inner budget, or a dead
    # primary would be tried for half a minute before anyone asks where the new one is
    return Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=6 if sentinel else 20)


@dataclass(frozen=True)
class SentinelTarget:
    sentinels: list[tuple[str, int]]
    master: str
    db: int = 0
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> SentinelTarget | None:
        """The target of a `redis+sentinel://` URL; None for any other URL."""
        parts = urlsplit(url)
        if parts.scheme != "redis+sentinel":
            return None
        credentials, _, hosts = parts.netloc.rpartition("@")
        sentinels = []
        for host in hosts.split(","):
            name, _, port = host.partition(":")
            sentinels.append((name, int(port or 26379)))
        master, _, db = parts.path.strip("/").partition("/")
        password = unquote(credentials.partition(":")[2]) or None
        return cls(sentinels, master, int(db or 0), password)

    def pool(self, pool_class: type[Any], **kwargs: Any) -> Any:
        """A pool of connections to the current primary."""
        manager = Sentinel(self.sentinels, socket_timeout=5)  # type: ignore[no-untyped-call]
        return pool_class(self.master, manager, db=self.db, password=self.password, **kwargs)


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool, waiting at its size as `BlockingConnectionPool` does."""


def connect(url: str, name: str, max_connections: int = 32) -> Redis:
    """A client with `decode_responses` and a bounded pool, named for `CLIENT LIST`.

    The pool blocks rather than grows: thousands of streams opening at once share
    `max_connections` connections, so a process's connection count stays constant.
    """
    target = SentinelTarget.parse(url)
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "timeout": 30,
        "decode_responses": True,
        "client_name": name,
        "retry": _retry(sentinel=target is not None),
        "retry_on_error": RETRY_ON,
    }
    if target is not None:
        return Redis(connection_pool=target.pool(_BlockingSentinelPool, **options))
    return Redis(connection_pool=BlockingConnectionPool.from_url(url, **options))


def raw_pool(url: str, name: str) -> ConnectionPool:
    """A pool only to make connections from, by hand (the hub's pub/sub connection)."""
    target = SentinelTarget.parse(url)
    if target is not None:
        pool: ConnectionPool = target.pool(SentinelConnectionPool, client_name=name)
        return pool
    return ConnectionPool.from_url(url, client_name=name)


def dump_job(data: dict[str, Any]) -> bytes:
    """ARQ's jobs and results as JSON, never pickle: whoever can write to Redis must not
    be able to run code in a worker. A result that is not JSON (an exception) is kept as
    its repr; the task record, not ARQ's result, is what clients read."""
    return json.dumps(data, default=repr, separators=(",", ":")).encode()


def load_job(raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(raw)
    return data


SERIALIZERS: dict[str, Any] = {"job_serializer": dump_job, "job_deserializer": load_job}


def arq_pool(url: str, queue_name: str) -> ArqRedis:
    """ARQ's client, with our retry policy (ARQ's own Sentinel pool drops it)."""
    target = SentinelTarget.parse(url)
    retry: dict[str, Any] = {"retry": _retry(target is not None), "retry_on_error": RETRY_ON}
    if target is not None:
        pool = target.pool(SentinelConnectionPool, **retry)
    else:
        pool = ConnectionPool.from_url(url, **retry)
    return ArqRedis(pool, default_queue_name=queue_name, **SERIALIZERS)


def arq_settings(url: str) -> RedisSettings:
    target = SentinelTarget.parse(url)
    if target is None:
        settings = RedisSettings.from_dsn(url)
    else:
        settings = RedisSettings(
            host=target.sentinels,
            sentinel=True,
            sentinel_master=target.master,
            database=target.db,
            password=target.password,
        )
    retry = _retry(sentinel=target is not None)
    return dataclasses.replace(settings, retry=retry, retry_on_error=list(RETRY_ON))
