"""Lean load-test clients: one coroutine per client, raw asyncio sockets for HTTP.

Each client follows one task to its end and records what it saw in its `Tally`. Loss and
duplication are checked, not assumed: every task event carries the task's `version`,
which the record bumps by exactly one per event, so a follower that sees versions
v, v+1, … v+n with none missing and none repeated has lost nothing.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

VERSION = re.compile(rb'"version":(\d+)')
STATUS = re.compile(rb'"status":"(\w+)"')
TERMINAL = {b"completed", b"failed", b"cancelled"}


@dataclass
class Tally:
    """What one client saw."""

    transport: str
    task_id: str
    connected: bool = False
    failed: str | None = None
    done: bool = False
    last_id: str | None = None
    first_version: int | None = None
    last_version: int | None = None
    received: int = 0
    lost: int = 0
    duplicated: int = 0
    requests: int = 0
    bytes_in: int = 0
    reconnects: int = 0
    latencies_ms: list[tuple[float, float]] = field(default_factory=list)  # (when, latency)
    completion_ms: float | None = None
    drop: Callable[[], None] | None = None  # closes the open connection (a storm)
    stormed: bool = False  # the storm dropped this client's connection
    back_at: float | None = None  # when its stream was last (re)opened; a storm resets it

    def see(self, event_id: str, data: bytes) -> bool:
        """Count one event; True when it is the task's terminal event."""
        match = VERSION.search(data)
        version = int(match[1]) if match else None
        self.last_id = event_id
        now = time.time()
        latency = now * 1000 - int(event_id.split("-")[0])
        if version is not None:
            if self.first_version is None or self.last_version is None:
                self.first_version = version  # the snapshot: its id is an older event's
            elif version <= self.last_version:
                self.duplicated += 1
                return False
            else:
                self.lost += version - self.last_version - 1
                self.received += 1
                self.latencies_ms.append((now, latency))
            self.last_version = version
        status = STATUS.search(data)
        if status is not None and status[1] in TERMINAL:
            self.done = True
            self.completion_ms = latency
            return True
        return False


_connections = itertools.count()


def local_address(host: str) -> tuple[str, int] | None:
    """Where the next connection to `host` comes from: to loopback, from 127.0.0.1 to
    127.0.0.64 in turn. One address has about 28,000 ephemeral ports, so from one address
    a machine cannot open more connections than that to one server's port."""
    if not host.startswith("127."):
        return None
    return f"127.0.0.{1 + next(_connections) % 64}", 0


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    token: str | None = None

    @classmethod
    def from_url(cls, url: str, token: str | None = None) -> Target:
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 80, token)

    def headers(self, extra: dict[str, str] | None = None) -> str:
        lines = {"Host": f"{self.host}:{self.port}", **(extra or {})}
        if self.token:
            lines["Authorization"] = f"Bearer {self.token}"
        return "".join(f"{k}: {v}\r\n" for k, v in lines.items())


async def _connect(
    target: Target, tally: Tally
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """A connection for a streaming client (the storm's `drop` closes it); None, with the
    client failed, when none can be made."""
    try:
        reader, writer = await asyncio.open_connection(
            target.host, target.port, local_addr=local_address(target.host)
        )
    except OSError as error:
        tally.failed = f"connect: {error}"
        return None
    tally.drop = writer.close
    return reader, writer


async def follow_sse(target: Target, tally: Tally) -> None:
    """Follow over SSE; reconnect with Last-Event-ID whenever the stream breaks."""
    while not tally.done:
        headers = {"Accept": "text/event-stream"}
        if tally.last_id:
            headers["Last-Event-ID"] = tally.last_id
        if (opened := await _connect(target, tally)) is None:
            return
        reader, writer = opened
        try:
            writer.write(
                f"GET /api/v1/tasks/{tally.task_id}/events HTTP/1.0\r\n"
                f"{target.headers(headers)}\r\n".encode()
            )
            tally.requests += 1
            status_line = await reader.readline()
            if b" 204 " in status_line:
                tally.done = True
                return
            if not status_line and tally.stormed:
                continue  # dropped by the storm before the answer came: reconnect
            if b" 200 " not in status_line:
                tally.failed = status_line.decode(errors="replace").strip() or "no answer"
                return
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            tally.connected = True
            tally.back_at = time.time()
            event_id = ""
            while line := await reader.readline():
                tally.bytes_in += len(line)
                if line.startswith(b"id: "):
                    event_id = line[4:-1].decode()
                elif line.startswith(b"data: ") and tally.see(event_id, line[6:]):
                    return
        except OSError:
            pass
        finally:
            tally.drop = None
            writer.close()
        tally.reconnects += 1


async def follow_ws(target: Target, tally: Tally) -> None:
    """Follow over the WebSocket; resubscribe with lastEventId whenever it breaks. The
    protocol by hand (RFC 6455, what a client needs of it), as lean as the SSE client: a
    WebSocket library's tasks and queues per connection made the load generator, not the
    server, the slower side at 10,000 clients."""
    while not tally.done:
        if (opened := await _connect(target, tally)) is None:
            return
        reader, writer = opened
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            upgrade = {"Upgrade": "websocket", "Connection": "Upgrade",
                       "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": key}  # fmt: skip
            writer.write(f"GET /api/v1/ws HTTP/1.1\r\n{target.headers(upgrade)}\r\n".encode())
            status_line = await reader.readline()
            if not status_line and tally.stormed:
                continue  # dropped by the storm before the answer came: reconnect
            if b" 101 " not in status_line:
                tally.failed = status_line.decode(errors="replace").strip() or "no answer"
                return
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            frame = {"type": "subscribe", "taskId": tally.task_id}
            if tally.last_id:
                frame["lastEventId"] = tally.last_id
            writer.write(_client_frame(json.dumps(frame).encode()))
            tally.requests += 1
            tally.connected = True
            tally.back_at = time.time()
            while (received := await _server_frame(reader)) is not None:
                opcode, raw = received
                if opcode == PING:
                    writer.write(_client_frame(raw, PONG))
                    continue
                tally.bytes_in += len(raw)
                if raw.startswith(b'{"id":"'):
                    event_id = raw[7 : raw.index(b'"', 7)].decode()
                    if tally.see(event_id, raw):
                        return
                elif b'"unsubscribed"' in raw:
                    tally.done = True
                    return
                elif b'"error"' in raw:
                    tally.failed = raw.decode(errors="replace")[:200]
                    return
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            tally.drop = None
            writer.close()
        tally.reconnects += 1  # closed (told to reconnect) or dropped: again


TEXT, CLOSE, PING, PONG = 1, 8, 9, 10


def _client_frame(payload: bytes, opcode: int = TEXT) -> bytes:
    """One whole frame from a client: masked, as the protocol requires (short payloads)."""
    mask = os.urandom(4)
    size = len(payload)
    length = bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + size.to_bytes(2, "big")
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x80 | opcode]) + length + mask + masked


async def _server_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """The server's next frame (unmasked, whole): (opcode, payload); None at its close."""
    head = await reader.readexactly(2)
    opcode, size = head[0] & 0x0F, head[1] & 0x7F
    if size >= 126:
        size = int.from_bytes(await reader.readexactly(2 if size == 126 else 8), "big")
    payload = await reader.readexactly(size)
    return None if opcode == CLOSE else (opcode, payload)


async def follow_poll(target: Target, tally: Tally, interval: float) -> None:
    """Poll the status endpoint with ETag over one keep-alive connection."""
    reader, writer = await asyncio.open_connection(
        target.host, target.port, local_addr=local_address(target.host)
    )
    etag = ""
    try:
        while not tally.done:
            extra = {"If-None-Match": etag} if etag else {}
            writer.write(
                f"GET /api/v1/tasks/{tally.task_id}/status HTTP/1.1\r\n"
                f"{target.headers(extra)}\r\n".encode()
            )
            tally.requests += 1
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "etag":
                    etag = value.strip()
            body = await reader.readexactly(length) if length else b""
            tally.bytes_in += len(status_line) + length
            if b" 200 " in status_line:
                tally.connected = True
                match = VERSION.search(body)
                if match and (tally.last_version is None or int(match[1]) > tally.last_version):
                    tally.received += 1
                    tally.last_version = int(match[1])
                status = STATUS.search(body)
                if status is not None and status[1] in TERMINAL:
                    tally.done = True
                    finished = re.search(rb'"finishedAt":"([^"]+)"', body)
                    if finished:
                        tally.completion_ms = (time.time() - _iso_seconds(finished[1])) * 1000
                    return
            elif b" 304 " not in status_line:
                tally.failed = status_line.decode(errors="replace").strip()
                return
            await asyncio.sleep(interval)
    except (OSError, asyncio.IncompleteReadError) as error:
        tally.failed = f"poll: {error}"
    finally:
        writer.close()


def _iso_seconds(value: bytes) -> float:
    return datetime.fromisoformat(value.decode().replace("Z", "+00:00")).timestamp()
