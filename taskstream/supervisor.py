"""Keeps `taskstream up`'s processes running: one that dies is started again, after a
backoff (1 s, doubled at each death in a row up to 30 s, back to 1 s once it has run for a
minute), with a line for whoever watches. Only `stop` (Ctrl-C, SIGTERM) ends them, the
last started first: the web server and the worker before the servers they need (or all at
once: the web processes sharing a port).

A process of ours runs in a session of its own: a terminal's Ctrl-C reaches the supervisor
only, which passes it on once (a second SIGINT makes uvicorn cut its streams instead of
draining them); and the kernel sends it SIGTERM if the supervisor dies without stopping it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from taskstream.embedded import Valkey

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
STEADY_S = 60.0  # a process that ran this long before dying is restarted at once again
PR_SET_PDEATHSIG = 1  # prctl(2)


@dataclass
class Supervised:
    """One process: how to start it, whether it runs, how to stop it, and its exit code."""

    name: str
    start: Callable[[], None]
    running: Callable[[], bool]
    stop: Callable[[], None]
    exit_code: Callable[[], int | None] = lambda: None
    interrupt: Callable[[], None] = lambda: None  # asked to stop, not waited for
    started_at: float = field(default=0.0)
    backoff_s: float = FIRST_BACKOFF_S
    due: float | None = None  # when a dead one is started again


class Supervisor:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.children: list[Supervised] = []

    def add(self, child: Supervised) -> None:
        """Start `child` and watch it from now on."""
        child.start()
        self.watch(child)

    def watch(self, child: Supervised) -> None:
        """Watch `child`, started already."""
        child.started_at = time.monotonic()
        self.children.append(child)

    def check(self) -> None:
        """Restart every child that died, once its backoff is over."""
        now = time.monotonic()
        for child in self.children:
            if child.due is None and not child.running():
                if now - child.started_at >= STEADY_S:
                    child.backoff_s = FIRST_BACKOFF_S
                child.due = now + child.backoff_s
                self.say(
                    f"taskstream: {child.name} exited ({child.exit_code()}); "
                    f"starting it again in {child.backoff_s:g} s"
                )
            elif child.due is not None and now >= child.due:
                child.due = None
                child.backoff_s = min(child.backoff_s * 2, MAX_BACKOFF_S)
                child.started_at = time.monotonic()
                try:
                    child.start()
                except Exception as error:  # not running: tried again after the next backoff
                    self.say(f"taskstream: {child.name} did not start: {error}")
                else:
                    self.say(f"taskstream: {child.name} started again")

    def stop(self, together: bool = False) -> None:
        """Stop every child, the last started first, or `together`: all asked at once, then
        each waited for."""
        if together:
            for child in self.children:
                child.interrupt()
        for child in reversed(self.children):
            try:
                child.stop()
            except Exception as error:
                self.say(f"taskstream: stopping {child.name} failed: {error}")


def command(
    name: str, args: list[str], env: dict[str, str], pass_fds: tuple[int, ...] = ()
) -> Supervised:
    """A process of ours (`taskstream worker`, `taskstream web`), stopped as a terminal's
    Ctrl-C would (one SIGINT; killed if still there after 15 s)."""
    running: list[subprocess.Popen[bytes]] = []
    interrupted: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        process = subprocess.Popen(
            args, env=env, pass_fds=pass_fds, start_new_session=True,
            preexec_fn=_dies_with(os.getpid()),
        )  # fmt: skip
        running[:] = [process]

    def interrupt() -> None:
        process = running[0]
        if process.poll() is None and process not in interrupted:
            interrupted.append(process)
            process.send_signal(signal.SIGINT)

    def stop() -> None:
        process = running[0]
        interrupt()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    return Supervised(
        name, start, lambda: running[0].poll() is None, stop, lambda: running[0].returncode,
        interrupt,
    )  # fmt: skip


def _dies_with(parent: int) -> Callable[[], None]:
    """For a child, before exec: SIGTERM once `parent` is gone (Linux). The function is
    looked up here, in the parent: between fork and exec the child only calls it."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None

    def arrange() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # it died before the line above
                os.kill(os.getpid(), signal.SIGTERM)

    return arrange


def server(name: str, valkey: Valkey) -> Supervised:
    """An embedded Valkey (its data kept on disk: a restart finds every task again)."""

    def exit_code() -> int | None:
        return None if valkey.process is None else valkey.process.returncode

    return Supervised(
        name,
        valkey.start,
        lambda: valkey.process is not None and valkey.process.poll() is None,
        valkey.stop,
        exit_code,
    )
