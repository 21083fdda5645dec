"""Connections that do not ask for anything, on raw sockets: a head too large, too many
header lines, nothing sent, a header line every so often, a body a byte at a time, and
one address holding many connections. Each is answered or closed; the web process's
memory and descriptors stay bounded, and other clients' requests keep working."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest

from server.guard import MAX_HEAD_BYTES, MAX_HEADERS
from tests.support import WAIT, Proc

READ_S = "1"  # the web process's TASKSTREAM_REQUEST_READ_SECONDS here
PER_CLIENT = 5


@pytest.fixture
def guarded_web(private: Callable[..., Proc]) -> Proc:
    return private(
        "web",
        TASKSTREAM_REQUEST_READ_SECONDS=READ_S,
        TASKSTREAM_MAX_WAITING_CONNECTIONS_PER_CLIENT=str(PER_CLIENT),
    )


@contextmanager
def connection(web: Proc, at: str = "127.0.0.1") -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", web.port), timeout=WAIT, source_address=(at, 0))
    try:
        yield sock
    finally:
        sock.close()


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (bounded by the socket's timeout); a
    reset (the server closed with our bytes unread) ends it too."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def keep_sending(sock: socket.socket, pieces: Iterator[bytes], pace_s: float) -> bytes:
    """Send a piece every `pace_s` (the client's own pace) until the server answers or
    closes; what it answered. Bounded: past WAIT the server has not closed it."""
    deadline = time.monotonic() + WAIT
    for piece in pieces:
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            return answer(sock)
        readable, _, _ = select.select([sock], [], [], pace_s)
        if readable:
            return answer(sock)
        assert time.monotonic() < deadline, "still open"
    raise AssertionError("ran out of pieces")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def still_works(web: Proc) -> None:
    assert httpx.get(web.url + "/healthz", timeout=WAIT).status_code == 200


def test_a_head_too_large_is_431_and_memory_stays_bounded(guarded_web: Proc):
    assert guarded_web.process is not None
    pid = guarded_web.process.pid
    before = rss_kib(pid)
    socks = []
    try:
        for _ in range(30):  # each sends 2 MB of one header line, never ending it
            sock = socket.create_connection(("127.0.0.1", guarded_web.port), timeout=WAIT)
            socks.append(sock)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        for sock in socks:
            got = keep_sending(sock, iter([b"a" * 65536] * 32), 0.001)
            assert got == b"" or got.startswith(b"HTTP/1.1 431"), got[:80]
        grown_mib = (rss_kib(pid) - before) / 1024
        # 30 × 2 MB read whole would be 60 MB and more; each is cut past 64 KiB
        assert grown_mib < 30, grown_mib
    finally:
        for sock in socks:
            sock.close()
    still_works(guarded_web)


def test_too_many_header_lines_are_431(guarded_web: Proc):
    lines = b"".join(b"X-%d: 1\r\n" % n for n in range(MAX_HEADERS + 1))
    with connection(guarded_web) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
        assert answer(sock).startswith(b"HTTP/1.1 431")
    fits = b"".join(b"X-%d: 1\r\n" % n for n in range(MAX_HEADERS - 2))  # + Host, Connection
    with connection(guarded_web) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + fits + b"\r\n")
        assert answer(sock).startswith(b"HTTP/1.1 200")
    assert len(fits) < MAX_HEAD_BYTES


def test_a_connection_that_sends_nothing_is_closed(guarded_web: Proc):
    with connection(guarded_web) as sock:
        assert answer(sock) == b""  # closed by the server, nothing said
    still_works(guarded_web)


def test_a_head_a_line_at_a_time_is_408(guarded_web: Proc):
    with connection(guarded_web) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        lines = (b"X-%d: 1\r\n" % n for n in range(10_000))
        assert keep_sending(sock, lines, 0.2).startswith(b"HTTP/1.1 408")
    still_works(guarded_web)


def test_a_body_a_byte_at_a_time_is_cut(guarded_web: Proc):
    with connection(guarded_web) as sock:
        head = b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        sock.sendall(head + b"Content-Length: 100000\r\n\r\n")
        got = keep_sending(sock, iter([b" "] * 10_000), 0.2)
        assert got == b"" or got.startswith(b"HTTP/1.1 408"), got[:80]
    still_works(guarded_web)


async def test_one_address_holds_a_bounded_number_of_waiting_connections(
    guarded_web: Proc, auth: dict[str, str]
):
    """An admitted stream does not count; waiting connections past the bound are closed
    at once, without taking others' service or the process's descriptors."""
    assert guarded_web.process is not None
    pid = guarded_web.process.pid
    at = "127.0.0.7"
    transport = httpx.AsyncHTTPTransport(local_address=at)
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(base_url=guarded_web.url, transport=transport) as http:
        async with http.stream("GET", "/api/v1/events", headers=auth) as stream:
            assert stream.status_code == 200
            base = descriptors(pid)
            socks = [
                socket.create_connection(("127.0.0.1", guarded_web.port), source_address=(at, 0))
                for _ in range(PER_CLIENT + 40)
            ]
            try:
                for sock in socks:
                    sock.setblocking(False)
                for sock in socks[PER_CLIENT:]:  # closed by the server, unasked
                    async with asyncio.timeout(WAIT):
                        with suppress(ConnectionResetError):
                            assert await loop.sock_recv(sock, 1) == b""
                for sock in socks[:PER_CLIENT]:  # these still wait for their request
                    with pytest.raises(BlockingIOError):
                        sock.recv(1)
                # the 40 refused hold none (the Redis pool may have grown by a few)
                assert descriptors(pid) <= base + PER_CLIENT + 10
                still_works(guarded_web)  # from another address: served
            finally:
                for sock in socks:
                    sock.close()
            assert not stream.is_closed  # the stream was never in question
