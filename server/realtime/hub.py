"""The hub: one Redis pub/sub connection per web process and server, shared by every stream.

Channels are sharded (`SSUBSCRIBE`, `SPUBLISH`): on one server the hub holds one link; on a
cluster, one link per primary it needs, each subscribing the channels of that primary's
slots. Channels are reference-counted: SSUBSCRIBE on a task's first local listener,
SUNSUBSCRIBE on its last. `subscribe()` (and `listen()`) returns only once Redis has
confirmed the subscription, so a stream that reads from Redis afterwards cannot miss an
event published in between. The commands of one turn of the event loop go out together, in
one write per link (a reconnect storm opens thousands of streams at once).

Each listener has a bounded queue. A listener whose queue fills is not allowed to grow: its
queue is dropped and it is marked `stale`, which tells its reader to catch up from the
task's event stream by its last id. When a link drops, or its server answers that a slot
moved (a cluster's fail-over or resharding), the hub asks where the link's channels live
now, subscribes each there with backoff and marks its listeners stale the same way. When
the process is asked to stop, `close()` ends every listener, whose stream then tells its
client to reconnect (to another process).

Deliberate choice: the connection is a bare redis-py `Connection` read by our own loop,
not redis-py's `PubSub`, whose silent reconnect would re-subscribe without telling us that
events may have been missed in the meantime.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from jobs.infra.connections import PubSubRoutes
from jobs.record.keys import channel
from jobs.record.values import Event
from server.realtime.waitable import Waitable

logger = logging.getLogger(__name__)

SUBSCRIBE_BATCH = 500
LAG_BUCKETS_MS = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0, float("inf"))
PING_EVERY_S = 5.0
DOWN_WAIT_S = 2.0  # how long a new listener waits for a link that is down to come back


class Listener(Waitable):
    """One stream's view of one task's channel, read by one stream at a time.

    Lean on purpose (thousands per process): a list, not a deque, and no `asyncio.Event`
    but a `Waitable`."""

    __slots__ = ("_woken", "channel", "closing", "maxsize", "queue", "stale")

    def __init__(self, channel: str, maxsize: int, closing: bool = False) -> None:
        super().__init__()
        self.channel = channel
        self.maxsize = maxsize
        self.queue: list[Event] = []
        self.stale = False
        self.closing = closing  # the process is shutting down: end, and tell to reconnect
        self._woken = closing

    def push(self, event: Event) -> None:
        if self.stale:
            return  # the reader will catch up from the stream anyway
        if len(self.queue) >= self.maxsize:
            self.mark_stale()
            return
        self.queue.append(event)
        self._wake()

    def mark_stale(self) -> None:
        self.queue.clear()
        self.stale = True
        self._wake()

    def shut(self) -> None:
        """The process is stopping: the stream ends, telling its client to reconnect."""
        self.closing = True
        self._wake()

    async def wait(self) -> None:
        """Until something happened since the last wait: an event, staleness, closing."""
        await self._until_ready()
        self._woken = False

    def _ready(self) -> bool:
        return self._woken

    def _wake(self) -> None:
        self._woken = True
        self._notify()


class _Channel(Waitable):
    __slots__ = ("confirmed", "link", "listeners", "resubscribed")
    shared = True  # every stream opening on the channel waits for its confirmation

    def __init__(self, link: _Link) -> None:
        super().__init__()
        self.link = link
        self.listeners: set[Listener] = set()
        self.confirmed = False
        self.resubscribed = False

    def confirm(self) -> None:
        self.confirmed = True
        self._notify()

    def unconfirm(self) -> None:
        self.confirmed = False

    async def until_confirmed(self) -> None:
        await self._until_ready()

    def _ready(self) -> bool:
        return self.confirmed


class Hub:
    def __init__(self, redis_url: str, queue_size: int, name: str) -> None:
        self._routes = PubSubRoutes(redis_url, name)
        self._queue_size = queue_size
        self._channels: dict[str, _Channel] = {}
        self._links: dict[str, _Link] = {}  # by server address
        self.reconnects = 0
        self.closing = False
        # publish → dispatch lag, in ms: bucket bound → count (for /metrics)
        self.lag_ms: dict[float, int] = dict.fromkeys(LAG_BUCKETS_MS, 0)
        self.lag_sum_ms = 0.0

    @property
    def channel_count(self) -> int:
        return len(self._channels)

    @property
    def connected(self) -> bool:
        """Every link is up (there is one from the start: revocations are followed)."""
        return bool(self._links) and all(link.up for link in self._links.values())

    def close(self) -> None:
        """Shutting down: every stream ends now, telling its client to reconnect elsewhere."""
        self.closing = True
        for entry in self._channels.values():
            for listener in entry.listeners:
                listener.shut()

    async def start(self) -> None:
        """Learn where the channels live (links connect as channels are subscribed)."""
        await self._routes.refresh()

    async def stop(self) -> None:
        for link in list(self._links.values()):
            await link.stop()
        await self._routes.close()

    @asynccontextmanager
    async def listen(self, task_id: str, timeout: float = 10.0) -> AsyncIterator[Listener]:
        """A listener on the task's channel, once Redis has confirmed the subscription."""
        listener = await self.subscribe(task_id, timeout)
        try:
            yield listener
        finally:
            self.release(listener)

    async def subscribe(self, task_id: str, timeout: float = 10.0) -> Listener:
        """A listener on the task's channel, once Redis has confirmed the subscription;
        `release` it when done. A `ConnectionError` when none came in `timeout`, or in
        `DOWN_WAIT_S` while the channel's link is down (an outage: the request is 503)."""
        name = channel(task_id)
        entry = self._channels.get(name)
        if entry is None:
            link = self._link(self._routes.address(name))
            entry = self._channels[name] = link.channels[name] = _Channel(link)
            link.queue("SSUBSCRIBE", name, entry)
        listener = Listener(name, self._queue_size, closing=self.closing)
        entry.listeners.add(listener)
        if not entry.confirmed:
            wait = timeout if entry.link.up else min(timeout, DOWN_WAIT_S)
            try:
                async with asyncio.timeout(wait):
                    await entry.until_confirmed()
            except BaseException as error:
                self.release(listener)
                if isinstance(error, TimeoutError):
                    raise RedisConnectionError(f"no subscription to {name} in {wait:g} s") from None
                raise
        return listener

    def release(self, listener: Listener) -> None:
        """The listener is done (again: nothing happens); its channel's last unsubscribes."""
        entry = self._channels.get(listener.channel)
        if entry is None or listener not in entry.listeners:
            return
        entry.listeners.discard(listener)
        if not entry.listeners:
            del self._channels[listener.channel]
            del entry.link.channels[listener.channel]
            entry.link.queue("SUNSUBSCRIBE", listener.channel, entry)

    def _link(self, address: str) -> _Link:
        link = self._links.get(address)
        if link is None:
            link = self._links[address] = _Link(self, address)
        return link

    async def rehome(self, link: _Link) -> None:
        """The link failed: move its channels to the servers that own them now, each
        subscribed there afresh (its listeners then catch up from the streams). A link whose
        server no longer owns slots is retired."""
        await self._routes.refresh()
        for name, entry in list(link.channels.items()):
            home = self._link(self._routes.address(name))
            if home is not link:
                del link.channels[name]
                home.channels[name] = entry
                entry.link = home
                entry.unconfirm()
                entry.resubscribed = True
                home.queue("SSUBSCRIBE", name, entry)
        if not self._routes.serves(link.address):
            link.retired = True
            del self._links[link.address]

    def connection(self, address: str) -> AbstractConnection:
        return self._routes.connection(address)

    def _observe_lag(self, event: Event) -> None:
        lag = time.time() * 1000 - int(event.id.partition("-")[0])
        self.lag_sum_ms += lag
        self.lag_ms[next(b for b in LAG_BUCKETS_MS if lag <= b)] += 1

    def deliver(self, entry: _Channel, message: bytes) -> None:
        event = Event.from_message(message)
        self._observe_lag(event)
        for listener in entry.listeners:
            listener.push(event)


class _Link:
    """One pub/sub connection to one server, and the channels subscribed (or to be) on it."""

    def __init__(self, hub: Hub, address: str) -> None:
        self.hub = hub
        self.address = address
        self.channels: dict[str, _Channel] = {}
        # channels whose SSUBSCRIBE is sent and not yet confirmed, in the order Redis answers
        self._awaiting: deque[_Channel] = deque()
        # commands waiting for this turn of the loop to end: (SSUBSCRIBE or SUNSUBSCRIBE, …)
        self._pending: list[tuple[str, list[tuple[str, _Channel]]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._conn: AbstractConnection | None = None
        self._last_reply = 0.0
        self.retired = False
        self._runner = asyncio.create_task(self._run(), name=f"hub link {address}")

    @property
    def up(self) -> bool:
        return self._conn is not None

    async def stop(self) -> None:
        self._runner.cancel()
        with suppress(asyncio.CancelledError):
            await self._runner

    def queue(self, command: str, name: str, entry: _Channel) -> None:
        if self._conn is None:
            return  # the next connect subscribes every channel there is then
        if self._pending and self._pending[-1][0] == command:
            self._pending[-1][1].append((name, entry))
        else:
            self._pending.append((command, [(name, entry)]))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        """Send what this turn of the loop queued, in order, in one write."""
        try:
            await asyncio.sleep(0)  # let the rest of this turn's opens and closes queue
            while self._pending and (conn := self._conn) is not None:
                pending, self._pending = self._pending, []
                commands = []
                for command, named in pending:
                    if command == "SSUBSCRIBE":
                        self._awaiting.extend(entry for _, entry in named)
                    # one channel a command: a cluster refuses channels of two slots in one
                    commands += [(command, name) for name, _ in named]
                await self._send(conn, commands)
        finally:
            self._flushing = None
            if self._conn is None:
                self._pending.clear()

    async def _send(self, conn: AbstractConnection, commands: list[tuple[str, str]]) -> None:
        for i in range(0, len(commands), SUBSCRIBE_BATCH):
            packed = conn.pack_commands(commands[i : i + SUBSCRIBE_BATCH])
            try:
                await conn.send_packed_command(packed, check_health=False)
            except (RedisError, OSError):
                logger.warning("hub send failed; the reader will reconnect")
                return

    async def _run(self) -> None:
        backoff = 0.1
        failed = False
        while True:
            conn: AbstractConnection | None = None
            tasks: list[asyncio.Task[None]] = []
            try:
                if failed:
                    await self.hub.rehome(self)
                    if self.retired:
                        return
                conn = self.hub.connection(self.address)
                await conn.connect()  # type: ignore[no-untyped-call]
                self._conn = conn
                self._awaiting.clear()
                self._pending.clear()  # every channel is subscribed again below
                for entry in self.channels.values():
                    entry.unconfirm()
                    entry.resubscribed = entry.resubscribed or failed
                self._awaiting.extend(self.channels.values())
                await self._send(conn, [("SSUBSCRIBE", name) for name in self.channels])
                backoff = 0.1
                tasks = [
                    asyncio.create_task(self._read(conn)),
                    asyncio.create_task(self._ping(conn)),
                ]
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if (error := task.exception()) is not None:
                        raise error
            except Exception as exc:
                logger.warning(
                    "hub lost Redis: %s",
                    exc,
                    extra={"server": self.address, "backoffS": round(backoff, 2)},
                )
            finally:
                self._conn = None
                for task in tasks:
                    task.cancel()
                if conn is not None:
                    with suppress(Exception):
                        await conn.disconnect()
            failed = True
            self.hub.reconnects += 1
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, 5.0)

    async def _read(self, conn: AbstractConnection) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                reply = await conn.read_response()
            except ResponseError as refused:
                # an SSUBSCRIBE refused: its slot is elsewhere now (MOVED), or the cluster
                # is failing over (CLUSTERDOWN); the link starts again where the slots are
                raise RedisConnectionError(f"a subscription was refused: {refused}") from None
            self._last_reply = loop.time()
            self._dispatch(reply)

    async def _ping(self, conn: AbstractConnection) -> None:
        """PING now and then; a link with no reply for three rounds is dead.

        A watchdog rather than a timeout on every read: a timer per message is a
        measurable cost at thousands of messages a second.
        """
        loop = asyncio.get_running_loop()
        self._last_reply = loop.time()
        while True:
            await asyncio.sleep(PING_EVERY_S)
            if loop.time() - self._last_reply > 3 * PING_EVERY_S:
                raise RedisConnectionError("no reply from Redis, not even to PING")
            with suppress(RedisError, OSError):
                await conn.send_command("PING", check_health=False)

    def _dispatch(self, reply: object) -> None:
        if not isinstance(reply, list) or len(reply) < 3:
            return
        kind = reply[0]
        if kind == b"smessage":
            entry = self.channels.get(reply[1].decode())
            if entry is not None:
                self.hub.deliver(entry, reply[2])
        elif kind == b"ssubscribe" and self._awaiting:
            entry = self._awaiting.popleft()
            entry.confirm()
            if entry.resubscribed:
                entry.resubscribed = False
                for listener in entry.listeners:
                    listener.mark_stale()
        elif kind == b"sunsubscribe":
            entry = self.channels.get(reply[1].decode())
            if entry is not None and entry.confirmed:
                # not asked for: the server gave the channel's slot away
                raise RedisConnectionError(f"{reply[1]!r} moved to another server")
