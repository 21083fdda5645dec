"""Script calls of one loop turn, sent as one pipeline: each caller its own answer."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError, ResponseError

from jobs.record.batch import Batched
from taskstream.embedded import Valkey, free_port

ECHO = "if ARGV[1] == 'bad' then return redis.error_reply('bad input') end return KEYS[1]..ARGV[1]"


async def test_calls_of_one_turn_go_out_on_one_connection_each_with_its_own_answer(valkey: Valkey):
    # a pool that would open a connection per concurrent command, were they sent one by one
    client = Redis.from_url(
        valkey.url, decode_responses=True, max_connections=100, client_name="batch-test"
    )
    echo = Batched(client.register_script(ECHO))
    try:
        answers = await asyncio.gather(*(echo([f"k{i}:"], [str(i)]) for i in range(50)))
        assert answers == [f"k{i}:{i}" for i in range(50)]
        mine = [c for c in await client.client_list() if c["name"] == "batch-test"]
        assert len(mine) == 1
    finally:
        await client.aclose()


async def test_an_error_reaches_only_its_own_caller(redis: Redis):
    echo = Batched(redis.register_script(ECHO))
    answers = await asyncio.gather(
        echo(["a:"], ["1"]), echo(["b:"], ["bad"]), echo(["c:"], ["3"]), return_exceptions=True
    )
    assert answers[0] == "a:1" and answers[2] == "c:3"
    assert isinstance(answers[1], ResponseError) and "bad input" in str(answers[1])


async def test_a_server_that_forgot_the_script_still_answers_every_call(redis: Redis):
    echo = Batched(redis.register_script(ECHO + " -- forgotten"))
    assert await echo(["x:"], ["0"]) == "x:0"
    await redis.script_flush()
    answers = await asyncio.gather(*(echo(["x:"], [str(i)]) for i in range(5)))
    assert answers == [f"x:{i}" for i in range(5)]


async def test_a_caller_gone_before_the_batch_left_does_not_disturb_the_others(redis: Redis):
    echo = Batched(redis.register_script(ECHO))
    calls = [asyncio.create_task(echo(["k:"], [str(i)])) for i in range(3)]
    await asyncio.sleep(0)  # every call is waiting for the batch
    calls[1].cancel()
    assert await calls[0] == "k:0"
    assert await calls[2] == "k:2"
    with pytest.raises(asyncio.CancelledError):
        await calls[1]


async def test_an_unreachable_server_fails_every_call_of_the_batch():
    client = Redis(port=free_port(), decode_responses=True)
    echo = Batched(client.register_script(ECHO))
    try:
        answers = await asyncio.wait_for(
            asyncio.gather(echo(["a:"], ["1"]), echo(["b:"], ["2"]), return_exceptions=True), 30
        )
        assert all(isinstance(answer, ConnectionError) for answer in answers)
    finally:
        await client.aclose()
