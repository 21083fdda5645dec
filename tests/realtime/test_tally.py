"""Each user's streams counted across web processes (`server/realtime/tally.py`), through
what can go wrong between a process and Redis: an outage while streams end, a process
whose lease lapsed. Two `StreamTally`s on one Valkey stand for two processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from jobs.infra import keys
from jobs.infra.connections import PROMPT, connect
from server.realtime.tally import StreamTally
from taskstream.embedded import Valkey
from tests.support import WAIT


@pytest.fixture
async def tallies(own_valkey: Valkey) -> AsyncIterator[Callable[[int], StreamTally]]:
    made: list[StreamTally] = []
    clients: list[Redis] = []

    def make(per_user: int) -> StreamTally:
        clients.append(connect(own_valkey.url, "taskstream:test:tally", patience=PROMPT))
        made.append(StreamTally(clients[-1], per_user))
        return made[-1]

    yield make
    for tally in made:
        await asyncio.wait_for(tally.stop(), WAIT)
    for client in clients:
        await client.aclose()


async def counted(redis: Redis, user: str) -> dict[str, str]:
    fields: dict[str, str] = await redis.hgetall(keys.user_streams(user))  # type: ignore[misc]
    return fields


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(WAIT):
        while not await check():
            await asyncio.sleep(0.05)


async def test_places_given_back_during_an_outage_are_counted_once_it_is_over(
    own_valkey: Valkey, tallies: Callable[[int], StreamTally]
):
    tally, other = tallies(3), tallies(3)
    await tally.start()
    await other.start()
    assert [await tally.claim("u") for _ in range(4)] == [True, True, True, False]
    assert not await other.claim("u")  # the three are the user's, wherever they are
    own_valkey.stop()
    tally.release("u")
    tally.release("u")
    async with asyncio.timeout(WAIT):  # the send was tried, and failed
        while "u" not in tally._dirty:
            await asyncio.sleep(0.05)
    own_valkey.start()
    redis = tally.redis
    await until(lambda: _field_is(redis, "u", tally.name, "1"))  # written whole
    assert await other.claim("u") and await other.claim("u")
    assert not await other.claim("u")


async def test_a_process_whose_lease_lapsed_counts_its_streams_again(
    tallies: Callable[[int], StreamTally],
):
    """Its counts were dropped by another's claim while its lease had lapsed (a loop
    held up for seconds); its next renewal writes them again."""
    tally, other = tallies(2), tallies(2)
    await tally.start()
    await other.start()
    assert await tally.claim("u") and await tally.claim("u")
    await tally.redis.zadd(keys.STREAM_PROCESSES, {tally.name: 0})  # lapsed
    assert await other.claim("u")  # its two no longer count...
    assert tally.name not in await counted(tally.redis, "u")  # ...and were forgotten
    await until(lambda: _field_is(tally.redis, "u", tally.name, "2"))
    assert not await other.claim("u")  # 2 + 1 > 2


async def test_stopping_with_redis_gone_is_bounded_however_many_streams_ended(
    own_valkey: Valkey, tallies: Callable[[int], StreamTally]
):
    tally = tallies(100_000)
    await tally.start()
    for _ in range(5000):
        assert await tally.claim("u")
    own_valkey.stop()
    for _ in range(5000):
        tally.release("u")
    await asyncio.wait_for(tally.stop(), WAIT)  # one try to send, not 5,000


async def _field_is(redis: Redis, user: str, field: str, value: str) -> bool:
    return (await counted(redis, user)).get(field) == value
