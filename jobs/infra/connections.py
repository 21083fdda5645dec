"""Redis clients that ride out a short outage (a restart, a fail-over) instead of failing.

A command that meets an error meaning "wait" (`WAIT_ERRORS`: no connection, a server still
loading its data, a cluster down or a slot moving during a fail-over, a demoted primary) is
tried again with exponential backoff, for as long as its client's `Patience` allows: about
half a minute in a worker (`PATIENT`), about two seconds for a web process's requests
(`PROMPT`; on a cluster, long enough for a fail-over: `Patience.on_cluster`), which then
answer 503 rather than keep a client waiting. A retried task write may, rarely, append its
event twice (the first try ran, its reply was lost); readers drop nothing for it, and
terminal states stay final.

`REDIS_URL` names one server (`redis://host:6379/0`), or a primary watched by Sentinel:
`redis+sentinel://[:password@]host:26379,host:26380/<master name>[/db]`. Then every
client asks the sentinels where the primary is, and asks again after a fail-over.

`TASKSTREAM_STREAMS_URL` (the task records, their event streams and live delivery) may also
name a cluster: `redis+cluster://[:password@]host:port,host:port`, any of its nodes. The
client learns the slots from them, and again after a fail-over or a `MOVED` answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import (
    ClusterError,
    ConnectionError,
    NoScriptError,
    ReadOnlyError,
    RedisClusterException,
    TimeoutError,
    TryAgainError,
)

# Errors that mean "the store is not there yet, wait": no connection or no answer (and
# LOADING, a `ConnectionError`), CLUSTERDOWN and MASTERDOWN and a MOVED storm (cluster
# errors), TRYAGAIN during a resharding, READONLY from a primary demoted under a client
# that has not yet learned of it, and no cluster node answering at all. The command did
# not run (or, timed out, may have: see above); none of them is a fault of the caller.
# (Redis's own `ConnectionError` and `TimeoutError`, not the built-in ones.)
WAIT_ERRORS: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,
    ClusterError,
    TryAgainError,
    ReadOnlyError,
    RedisClusterException,
)


# and a socket's own errors, which redis-py does not always wrap
RETRY_ON = [*WAIT_ERRORS, OSError]


def is_outage(error: BaseException) -> bool:
    """Whether `error` is Redis saying it is unreachable or not ready, rather than a bug."""
    return isinstance(error, WAIT_ERRORS)


BACKOFF_BASE_S = 0.05  # the first wait between two tries; doubled at each try, up to a cap


@dataclass(frozen=True)
class Patience:
    """How long a client keeps trying a command through an outage.

    No socket timeout: a server that answers nothing (stopped, not gone) keeps a command
    waiting until it answers. redis-py's read timeout, set on the cluster client, let a
    cancelled stream's read swallow the cancel now and then (the stream stayed open after
    its client left); `/readyz` bounds its own wait instead."""

    retries: int
    cap_s: float  # the longest wait between two tries
    cluster: Patience | None = None  # a cluster client's, when not `on_cluster`'s rule

    @classmethod
    def within(cls, seconds: float, cap_s: float = 2.0) -> Patience:
        """As many tries as the backoff fits in `seconds` (at least one retry)."""
        retries, waited = 1, BACKOFF_BASE_S
        while waited < seconds:
            waited += min(cap_s, BACKOFF_BASE_S * 2**retries)
            retries += 1
        return cls(retries, cap_s)

    @property
    def on_cluster(self) -> Patience:
        """A cluster client's: twice the tries at half the wait (a fail-over is over in
        seconds), unless given."""
        return self.cluster or Patience(self.retries * 2, self.cap_s / 2)

    def retry(self, sentinel: bool = False) -> Retry:
        # through Sentinel, a connection retries inside each of its own retries (redis-py
        # asks the sentinels again only between outer tries): a short inner budget, or a
        # dead primary would be tried for half a minute before anyone asks for the new one
        retries = min(self.retries, 6) if sentinel else self.retries
        backoff = ExponentialBackoff(cap=self.cap_s, base=BACKOFF_BASE_S)
        return Retry(backoff, retries=retries, supported_errors=tuple(RETRY_ON))

    def options(self, sentinel: bool = False) -> dict[str, Any]:
        """A client's or pool's keyword arguments for this patience."""
        return {"retry": self.retry(sentinel), "retry_on_error": RETRY_ON}


# a worker's commands: about half a minute of tries (`TASKSTREAM_REDIS_PATIENCE_SECONDS`)
PATIENT = Patience(retries=20, cap_s=2.0)
# a web process's requests: about two seconds, then `REDIS_UNAVAILABLE` (503); on a cluster
# (the task streams), long enough to ride out a fail-over (about 8 s): a stream's catch-up
# read must not fail while a replica is promoted
PROMPT = Patience(retries=6, cap_s=0.5, cluster=Patience(retries=20, cap_s=0.5))

Client = Redis | RedisCluster  # a store's client: one server (or Sentinel's primary), a cluster


def _hosts(netloc: str, default_port: int) -> tuple[list[tuple[str, int]], str | None]:
    """`[:password@]host:port,host:port` → the hosts and the password."""
    credentials, _, hosts = netloc.rpartition("@")
    found = []
    for host in hosts.split(","):
        name, _, port = host.partition(":")
        found.append((name, int(port or default_port)))
    return found, unquote(credentials.partition(":")[2]) or None


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
        sentinels, password = _hosts(parts.netloc, 26379)
        master, _, db = parts.path.strip("/").partition("/")
        return cls(sentinels, master, int(db or 0), password)

    def pool(self, pool_class: type[Any], **kwargs: Any) -> Any:
        """A pool of connections to the current primary."""
        manager = Sentinel(self.sentinels, socket_timeout=5)  # type: ignore[no-untyped-call]
        return pool_class(self.master, manager, db=self.db, password=self.password, **kwargs)


@dataclass(frozen=True)
class ClusterTarget:
    nodes: list[tuple[str, int]]
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> ClusterTarget | None:
        """The target of a `redis+cluster://` URL; None for any other URL."""
        parts = urlsplit(url)
        if parts.scheme != "redis+cluster":
            return None
        return cls(*_hosts(parts.netloc, 6379))

    def client(self, patience: Patience = PATIENT, **kwargs: Any) -> RedisCluster:
        """A cluster client that rides out a fail-over (`_Cluster`)."""
        return _Cluster(  # type: ignore[abstract]
            patience.on_cluster,
            startup_nodes=[ClusterNode(host, port) for host, port in self.nodes],
            password=self.password,
            socket_connect_timeout=5,
            **kwargs,
        )


class _Cluster(RedisCluster):
    """redis-py's cluster client, riding out a fail-over as `connect`'s clients ride out an
    outage, for as long as its `Patience` allows. redis-py 5 retries a command at once, a
    few times, which all meet the dead primary (or CLUSTERDOWN from the others) before its
    replica is promoted, seconds later; and learns the cluster's commands outside its
    retries."""

    def __init__(self, patience: Patience, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._outage = patience.retry()

    async def initialize(self) -> RedisCluster:
        learn = super().initialize
        learned: RedisCluster = await self._outage.call_with_retry(learn, _ignore)
        return learned

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        run = super().execute_command
        return await self._outage.call_with_retry(lambda: run(*args, **kwargs), _ignore)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ClusterPipeline:
        if transaction or shard_hint:
            raise RedisClusterException("a cluster's pipeline is neither a transaction nor sharded")
        return _Pipeline(self)  # type: ignore[abstract]


class _Pipeline(ClusterPipeline):
    """redis-py 5's cluster pipeline, whose failure while the client re-learns the cluster is
    a wait error. A pipeline that meets a dead node closes the client's view of the cluster
    (its default node becomes None) until it is learned again; another pipeline whose
    replies came back meanwhile, some with errors, then fails on that None with an
    `AttributeError` (redis-py issue 3835): seen in one fail-over in three, where it ended
    the streams reading at that moment. The client is mid-fail-over: wait, as for
    CLUSTERDOWN."""

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        try:
            return await super().execute(raise_on_error, allow_redirections)
        except AttributeError:
            if self._client.get_default_node() is not None:
                raise  # not that
            raise RedisClusterException("the cluster's nodes are being learned again") from None


async def _ignore(error: Exception) -> None:
    """A failed try, before the next: nothing to undo."""


class Script(AsyncScript):
    """A Lua script run by its SHA, as redis-py's: a server that answers NOSCRIPT gets it
    loaded, and the call is made again. During a cluster's fail-over that is not enough:
    the load goes to the primaries the client knows, the call to the replica just promoted,
    which has never seen the script (the fault matrix's `CLUSTER FAILOVER` failed demo
    jobs so, one run in ten). So the load and the call are tried again, a few times over
    a few seconds, while the client learns the new primary."""

    async def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        for pause in SCRIPT_PAUSES_S:
            try:
                return await super().__call__(keys, args, client)
            except NoScriptError:
                await asyncio.sleep(pause)
        return await super().__call__(keys, args, client)


SCRIPT_PAUSES_S = (0.1, 0.2, 0.5, 1.0, 2.0)


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool, waiting at its size as `BlockingConnectionPool` does."""


def connect(url: str, name: str, max_connections: int = 32, patience: Patience = PATIENT) -> Redis:
    """A client with `decode_responses` and a bounded pool, named for `CLIENT LIST`.

    The pool blocks rather than grows: thousands of streams opening at once share
    `max_connections` connections, so a process's connection count stays constant. The
    client owns its pool: `aclose` closes its connections.
    """
    if ClusterTarget.parse(url) is not None:
        raise ValueError("a cluster holds the task streams only: see `connect_streams`")
    target = SentinelTarget.parse(url)
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "timeout": 30,
        "decode_responses": True,
        "client_name": name,
        **patience.options(sentinel=target is not None),
    }
    if target is not None:
        return Redis.from_pool(target.pool(_BlockingSentinelPool, **options))
    return Redis.from_pool(BlockingConnectionPool.from_url(url, **options))


def connect_streams(
    url: str, name: str, max_connections: int = 32, patience: Patience = PATIENT
) -> Client:
    """The task records' client: `connect`'s, or a cluster's. A cluster node's pool does not
    wait at its size but fails, so it is larger; reads are batched, few are in flight."""
    target = ClusterTarget.parse(url)
    if target is None:
        return connect(url, name, max_connections, patience)
    return target.client(
        patience, decode_responses=True, client_name=name, max_connections=max_connections * 8
    )


def raw_pool(url: str, name: str) -> ConnectionPool:
    """A pool only to make connections from, by hand (the hub's pub/sub connection)."""
    target = SentinelTarget.parse(url)
    if target is not None:
        pool: ConnectionPool = target.pool(SentinelConnectionPool, client_name=name)
        return pool
    return ConnectionPool.from_url(url, client_name=name)


class PubSubRoutes:
    """Where each channel's sharded pub/sub is served: the one server (Sentinel's primary,
    asked again at each connect), or in a cluster the primary that owns the channel's slot,
    as last learned (`refresh` asks the cluster again)."""

    def __init__(self, url: str, name: str) -> None:
        self.name = name
        cluster = ClusterTarget.parse(url)
        self._cluster = None if cluster is None else cluster.client()
        self._password = None if cluster is None else cluster.password
        self._pool = raw_pool(url, name) if cluster is None else None

    async def refresh(self) -> None:
        if self._cluster is not None:
            await self._cluster.nodes_manager.initialize()

    def address(self, channel: str) -> str:
        """The server of the channel (`""`: the one server)."""
        if self._cluster is None:
            return ""
        node = self._cluster.get_node_from_key(channel)
        if node is None:
            raise ConnectionError(f"no node serves the slot of {channel}")
        return str(node.name)

    def serves(self, address: str) -> bool:
        """Whether `address` still owns slots (a fail-over's old primary does not)."""
        if self._cluster is None:
            return True
        return any(node.name == address for node in self._cluster.get_primaries())

    def connection(self, address: str) -> AbstractConnection:
        if self._pool is not None:
            return self._pool.connection_class(**self._pool.connection_kwargs)
        host, _, port = address.rpartition(":")
        return Connection(host=host, port=int(port), password=self._password, client_name=self.name)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.disconnect()
        if self._cluster is not None:
            await self._cluster.aclose()


def dump_job(data: dict[str, Any]) -> bytes:
    """ARQ's jobs and results as JSON, never pickle: whoever can write to Redis must not
    be able to run code in a worker. A result that is not JSON (an exception) is kept as
    its repr; the task record, not ARQ's result, is what clients read."""
    return json.dumps(data, default=repr, separators=(",", ":")).encode()


def load_job(raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(raw)
    return data


SERIALIZERS: dict[str, Any] = {"job_serializer": dump_job, "job_deserializer": load_job}


def arq_pool(url: str, queue_name: str, patience: Patience = PATIENT) -> ArqRedis:
    """ARQ's client, with our retry policy (ARQ's own Sentinel pool drops it)."""
    target = SentinelTarget.parse(url)
    retry = patience.options(sentinel=target is not None)
    if target is not None:
        pool = target.pool(SentinelConnectionPool, **retry)
    else:
        pool = ConnectionPool.from_url(url, **retry)
    return ArqRedis(pool, default_queue_name=queue_name, **SERIALIZERS)


def arq_settings(url: str, patience: Patience = PATIENT) -> RedisSettings:
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
    retry = patience.retry(sentinel=target is not None)
    return dataclasses.replace(settings, retry=retry, retry_on_error=RETRY_ON)
