"""Redis clients that ride out a short outage (a restart, a fail-over) instead of failing.

Commands that hit a dropped connection are retried with exponential backoff for about
half a minute. A retried task write may, rarely, append its event twice (the first try
ran, its reply was lost); readers drop nothing for it, and terminal states stay final.
"""

from __future__ import annotations

import dataclasses

from arq.connections import RedisSettings
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

RETRY_ON = [ConnectionError, TimeoutError, OSError]


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=20)


def connect(url: str, name: str, max_connections: int = 32) -> Redis:
    """A client with `decode_responses` and a bounded pool, named for `CLIENT LIST`.

    The pool blocks rather than grows: thousands of streams opening at once share
    `max_connections` connections, so a process's connection count stays constant.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=30,
        decode_responses=True,
        client_name=name,
        retry=_retry(),
        retry_on_error=RETRY_ON,
    )
    return Redis(connection_pool=pool)


def arq_settings(url: str) -> RedisSettings:
    return dataclasses.replace(
        RedisSettings.from_dsn(url), retry=_retry(), retry_on_error=list(RETRY_ON)
    )
