"""The lean WebSocket protocol under real uvicorn: flow control, order, what it lets go."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
import websockets

from server.realtime.ws_protocol import LeanWebSocketProtocol, _Flag
from tests.support import WAIT

FRAMES, SIZE = 200, 60_000


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[tuple[uvicorn.Server, int]]:
    """uvicorn on a socket bound here (clients may connect at once), our protocol."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(
        app, ws=LeanWebSocketProtocol, log_config=None, lifespan="off", ws_max_size=1 << 20
    )
    server = uvicorn.Server(config)
    running = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield server, sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(running, WAIT)


async def test_messages_both_ways_arrive_complete_and_in_order():
    echoed: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        for _ in range(3):  # the client's messages, in the order sent
            echoed.append((await receive())["text"])
        for i in range(FRAMES):
            await send({"type": "websocket.send", "text": f"{i}:" + "x" * SIZE})
        await send({"type": "websocket.close", "code": 1000})

    async with serving(app) as (server, port):
        async with websockets.connect(f"ws://127.0.0.1:{port}", max_queue=1) as client:
            for word in ("a", "b", "c"):
                await client.send(word)
            got = []
            async with asyncio.timeout(WAIT * 2):
                async for frame in client:
                    got.append(frame)
    assert echoed == ["a", "b", "c"]
    assert [str(f).split(":", 1)[0] for f in got] == [str(i) for i in range(FRAMES)]
    assert all(len(f) == len(str(i)) + 1 + SIZE for i, f in enumerate(got))


async def test_the_handshake_is_let_go_once_answered():
    accepted = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        accepted.set()
        await receive()  # until the client goes

    async with serving(app) as (server, port):
        async with websockets.connect(f"ws://127.0.0.1:{port}") as client:
            await asyncio.wait_for(accepted.wait(), WAIT)
            (protocol,) = server.server_state.connections
            assert isinstance(protocol, LeanWebSocketProtocol)
            assert protocol.request is None and protocol.response is None
            await client.send("bye")


async def test_writes_wait_while_the_transport_is_full_and_all_go_on_when_it_drains():
    writable = _Flag()
    await asyncio.wait_for(writable.wait(), WAIT)  # set: no wait
    writable.clear()  # the transport's buffer passed its high-water mark
    senders = [asyncio.create_task(writable.wait()) for _ in range(3)]
    await asyncio.sleep(0)  # every sender is waiting
    assert not any(sender.done() for sender in senders)
    senders[1].cancel()  # one sender gives up (its connection went)
    writable.set()  # drained
    await asyncio.wait_for(asyncio.gather(senders[0], senders[2]), WAIT)
    assert writable.is_set()
