"""Running the web app under uvicorn, from start-up to a graceful stop.

On SIGTERM or SIGINT, before uvicorn waits (up to 10 s) for open connections to close,
every open stream is told to reconnect elsewhere: SSE gets a `reconnect` event (its
`Last-Event-ID` unchanged), the WebSocket a `reconnect` frame and close 1012. Streams
never close on their own, so without this a stop would always wait the whole grace time
and then cut them.
"""

from __future__ import annotations

import gc
import ipaddress
import socket
from types import FrameType

import uvicorn

from jobs.infra.config import ConfigError, Settings
from server.app import create_app
from server.guard import guarded
from server.lifespan import Stopping
from server.realtime.ws_protocol import LeanWebSocketProtocol

GRACE_S = 10
WS_MAX_FRAME = 64 * 1024  # a client's frames are a few hundred bytes; a larger one: 1009
GC_THRESHOLDS = (20_000, 20, 20)  # CPython's default: (700, 10, 10)


def serve(
    settings: Settings,
    host: str,
    port: int,
    backlog: int = 2048,
    listener: socket.socket | None = None,
) -> None:
    """Serve on `host`:`port`, or on `listener`, a listening socket bound already (one of
    several processes sharing it: `taskstream/processes.py`)."""
    check_trust(settings.trusted_proxies, host)
    stopping = Stopping()
    app = create_app(settings, stopping)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            stopping.begin()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=GRACE_S,
        backlog=backlog,
        # uvicorn's httptools protocol, bounded against connections that ask for nothing
        http=guarded(
            settings.request_read_s,
            settings.max_waiting_connections_per_client,
            {a.strip() for a in settings.trusted_proxies.split(",") if a.strip()},
        ),  # fmt: skip
        # the lightest of uvicorn's WebSocket implementations (no tasks of its own per
        # connection; it stops reading a client until the app took its last message),
        # holding less per connection still (`ws_protocol.py`)
        ws=LeanWebSocketProtocol,
        ws_max_size=WS_MAX_FRAME,
        # no permessage-deflate: its zlib state is ~50 KiB per connection, for frames of a
        # few hundred bytes (a snapshot with a whole plan's text is the rare large one)
        ws_per_message_deflate=False,
        # the client's address decides rate limits and /dev/mail: believe a forwarded one
        # only from the proxies named (uvicorn's default believes 127.0.0.1)
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )
    _collect_less()
    try:
        Server(config).run(sockets=None if listener is None else [listener])
    except KeyboardInterrupt:  # uvicorn raises a SIGINT again once it has drained: done
        pass


def check(settings: Settings, host: str) -> None:
    """What `serve` would refuse at start-up (a configuration error), refused now: in the
    parent of several web processes, before any is started."""
    check_trust(settings.trusted_proxies, host)
    create_app(settings)


def check_trust(trusted: str, host: str) -> None:
    """`*` believes every client's X-Forwarded-For: only for a listener no client reaches
    but through the proxy (loopback). Anywhere else, a client would choose its own address
    (past the rate limits)."""
    if "*" in (t.strip() for t in trusted.split(",")) and not _is_loopback(host):
        raise ConfigError(
            f"TASKSTREAM_TRUSTED_PROXIES=* with a listener on {host}: any client could say "
            "who it is in X-Forwarded-For; name the proxies' addresses instead"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _collect_less() -> None:
    """Fewer, larger garbage collections: every open stream keeps ~100 objects alive, so at
    CPython's default threshold (a young collection every 700 net allocations) a storm of
    5,000 opens ran ~1,200 collections, some of them full, and spent 40 % of its CPU in the
    collector. Everything made at start-up (modules, routes, settings) lives as long as the
    process: frozen, no collection walks it again. A young collection of 20,000 objects
    pauses the loop a few milliseconds (`python -m bench.storm` measures the CPU per open)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
