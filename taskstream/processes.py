"""Several web processes behind one port: `taskstream web --processes N`.

This process opens N listening sockets on the port (`SO_REUSEPORT`) and hands one to each
of N children (`taskstream web --listen-fd`), each a whole web process with its own hub,
its own streams and its own event loop. The kernel spreads new connections evenly over
the sockets (by a hash of the client's address and port): with one socket shared, a burst
of 1,500 connections went 71 % to the process that woke first, which then refuses streams
at its cap while the other has room. A child that dies is started again (`Supervisor`:
after a backoff, with a log line) on the same socket, which this process keeps open
meanwhile: the connections that arrive for it wait in its queue, none is refused. The
other children go on serving, and the streams the dead one held reconnect to them (their
`Last-Event-ID` loses nothing). SIGTERM or SIGINT drains
every child at once, as one process drains alone (`server/serve.py`: a reconnect hint to
every stream, then close), and waits for them.

The children run as `Supervisor` runs its processes: a terminal's Ctrl-C reaches this
process only, and a child is sent SIGTERM if this process dies without stopping it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from types import FrameType

from taskstream.supervisor import Supervisor, command

logger = logging.getLogger(__name__)


def usable_cores() -> int:
    """The cores this process may run on (a container's or `taskset`'s share)."""
    return len(os.sched_getaffinity(0))


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket of a child's own, on a port the others listen on too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        sys.exit(f"taskstream: cannot listen on {host}:{port}: {error.strerror}")
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def run(host: str, port: int, backlog: int, count: int) -> None:
    """Serve `host`:`port` with `count` web processes until SIGTERM or SIGINT, then drain
    them all."""
    listeners = [listen(host, port, backlog)]
    port = listeners[0].getsockname()[1]  # the one chosen, when asked for 0
    listeners += [listen(host, port, backlog) for _ in range(count - 1)]
    keeper = Supervisor(logger.warning)
    stop: list[int] = []

    def stop_on(signum: int, frame: FrameType | None) -> None:
        stop.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop_on)
    for number, listener in enumerate(listeners):
        fd = listener.fileno()
        args = [sys.executable, "-m", "taskstream.cli", "web", "--host", host,
                "--port", str(port), "--backlog", str(backlog), "--listen-fd", str(fd)]  # fmt: skip
        keeper.add(command(f"web process {number}", args, dict(os.environ), pass_fds=(fd,)))
    logger.info("serving on %s:%d with %d web processes", host, port, count)
    while not stop:
        time.sleep(0.2)
        keeper.check()
    for listener in listeners:  # this process's copies: each closes with its child's
        listener.close()
    logger.info("draining %d web processes", count)
    keeper.stop(together=True)
