"""The `taskstream` command.

taskstream up       Valkey (unless REDIS_URL is set) + a worker + the web server
                    (--cluster: the task streams on a local 3+3 Valkey Cluster too)
taskstream web      the web server only (uvicorn; --processes N of them on one port)
taskstream worker   an ARQ worker only
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path

from jobs.infra import logs
from jobs.infra.config import ConfigError, Settings
from taskstream.embedded import Cluster, Valkey, free_port
from taskstream.mailcatcher import MailCatcher
from taskstream.supervisor import Supervisor, command, server

# a reconnect storm arrives at once: room for it in the accept queue (uvicorn's is 2048)
BACKLOG = 8192


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="taskstream", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "web"):
        p = sub.add_parser(name)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
        p.add_argument(
            "--backlog",
            type=int,
            default=BACKLOG,
            help="connections the kernel holds before they are accepted (capped by somaxconn)",
        )
        p.add_argument(
            "--processes",
            type=int,
            help="web processes sharing the port (default: TASKSTREAM_WEB_PROCESSES, else "
            + ("one per usable core)" if name == "web" else "one)"),
        )
    # a child of `web --processes N`: serve on the socket its parent bound
    sub.choices["web"].add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    sub.choices["up"].add_argument(
        "--cluster",
        action="store_true",
        help="the task records and streams on a local Valkey Cluster (3 primaries, 3 replicas)",
    )
    sub.add_parser("worker")
    _loadtest_arguments(sub.add_parser("loadtest", help="drive a running Taskstream"))
    args = parser.parse_args(argv)
    if args.command == "loadtest":
        loadtest(args)
        return
    logs.configure()  # once, for whichever command runs in this process
    try:
        settings = Settings.from_env()
        if args.command == "up":
            count = _processes(args, settings) or 1
            up(settings, args.host, args.port, args.backlog, args.cluster, count)
        elif args.command == "web":
            web(settings, args.host, args.port, args.backlog, _processes(args, settings),
                args.listen_fd)  # fmt: skip
        else:
            worker(settings)
    except ConfigError as exc:
        sys.exit(f"taskstream: {exc}")


def _processes(args: argparse.Namespace, settings: Settings) -> int | None:
    count = settings.web_processes if args.processes is None else args.processes
    if count is not None and count < 1:
        raise ConfigError(f"--processes must be at least 1, got {count}")
    return count


def _loadtest_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--token", help="an access token (by default it signs up an account)")
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--procs", type=int, default=1, help="processes to spread the clients over")
    p.add_argument("--transport", choices=["sse", "ws", "poll", "mixed"], default="sse")
    p.add_argument("--share", type=int, default=1, help="clients following one task")
    p.add_argument("--ramp", type=float, default=5.0, help="seconds to open all clients")
    p.add_argument("--seconds", type=float, default=10.0, help="how long each task runs")
    p.add_argument("--step", type=float, default=1.0, help="seconds between progress events")
    p.add_argument("--poll-interval", type=float, default=2.0)
    p.add_argument("--storm-at", type=float, help="drop every connection this many s in")
    p.add_argument("--max-seconds", type=float, default=300.0, help="hard stop")
    p.add_argument("--server-pid", type=int, help="the web process, to read RSS/CPU in /proc")
    p.add_argument("--redis-url", help="to count the web processes' Redis connections")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--plot", help="write latency percentiles over time to this PNG")
    p.add_argument("--quiet", action="store_true", help="no live progress on stderr")


def loadtest(args: argparse.Namespace) -> None:
    import asyncio
    import json

    from taskstream.loadtest import Options, run
    from taskstream.loadtest.report import PLOT_NEEDS, plot, render

    if not 1 <= args.clients <= 200_000 or args.share < 1 or args.step <= 0 or args.procs < 1:
        sys.exit("taskstream loadtest: --clients 1..200000, --share ≥ 1, --step > 0, --procs ≥ 1")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        # said now, not after the load, when its report would be lost with the exit
        sys.exit(f"taskstream loadtest: {PLOT_NEEDS}")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    fields = {k: v for k, v in vars(args).items() if k not in {"command", "json", "plot"}}
    report = asyncio.run(run(Options(**fields)))
    if args.plot:
        plot(report, args.plot)
    if args.json:
        print(json.dumps(report))
    else:
        print(render(report))


def web(
    settings: Settings,
    host: str,
    port: int,
    backlog: int = BACKLOG,
    count: int | None = None,
    listen_fd: int | None = None,
) -> None:
    """One web process, or `count` sharing the port (default: one per usable core)."""
    from taskstream import processes

    count = count or processes.usable_cores()
    from server.serve import check, serve

    if listen_fd is None and count > 1:
        check(settings, host)  # a mistake said once, not by each process, again and again
        processes.run(host, port, backlog, count)
        return

    listener = None if listen_fd is None else socket.socket(fileno=listen_fd)
    serve(settings, host, port, backlog, listener)


def worker(settings: Settings) -> None:
    from jobs.worker import run

    run(settings)


def up(
    settings: Settings,
    host: str,
    port: int,
    backlog: int = BACKLOG,
    cluster: bool = False,
    processes: int = 1,
) -> None:
    """Everything on one machine, kept running (`Supervisor`: a process that dies is started
    again); Ctrl-C (or SIGTERM) stops all of it."""
    env = dict(os.environ)
    data = Path(settings.data_dir)
    keeper = Supervisor(say)
    catcher = None
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    try:
        if not settings.redis_url:
            valkey = Valkey(data / "valkey")
            keeper.add(server("Valkey", valkey))
            env["REDIS_URL"] = valkey.url
            say(f"taskstream: started Valkey at {valkey.url} (data in {valkey.data_dir})")
        if cluster:
            if settings.streams_url:
                raise ConfigError(
                    "--cluster starts a cluster of its own: unset TASKSTREAM_STREAMS_URL"
                )
            nodes = Cluster(data / "cluster")
            nodes.start()
            for number, node in enumerate(nodes.nodes):  # each node restarts alone
                keeper.watch(server(f"cluster node {number}", node))
            env["TASKSTREAM_STREAMS_URL"] = nodes.url
            say(f"taskstream: started a Valkey Cluster (3 primaries, 3 replicas) at {nodes.url}")
        env.setdefault("TASKSTREAM_SECRET_KEY", _secret_key(data / "secret_key"))
        shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
        env.setdefault("TASKSTREAM_PUBLIC_URL", f"http://{shown}:{port}")
        if "SMTP_HOST" not in env:
            catcher = MailCatcher(data / "mail", free_port())
            catcher.start()
            env |= {"SMTP_HOST": catcher.host, "SMTP_PORT": str(catcher.port)}
            env["TASKSTREAM_MAIL_CATCHER_DIR"] = str(catcher.folder.resolve())
            say(f"taskstream: mails are caught, not sent: see http://{shown}:{port}/dev/mail")
        me = [sys.executable, "-m", "taskstream.cli"]
        web_args = ["web", "--host", host, "--port", str(port), "--backlog", str(backlog),
                    "--processes", str(processes)]  # fmt: skip
        keeper.add(command("the worker", [*me, "worker"], env))
        keeper.add(command("the web server", [*me, *web_args], env))
        url = f"http://{host}:{port}"
        _wait_ready(url + "/readyz", keeper)
        say(f"taskstream: ready at {url}  (open it in a browser; the README has curl examples)")
        while True:
            time.sleep(0.5)
            keeper.check()
    except KeyboardInterrupt:
        say("taskstream: stopping")
    finally:
        keeper.stop()
        if catcher is not None:
            catcher.stop()


def say(line: str) -> None:
    """A line for the person (or supervisor) watching `up`, at once even into a pipe."""
    print(line, flush=True)


def _secret_key(path: Path) -> str:
    """This machine's signing key for `taskstream up`, made once and kept."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait_ready(url: str, keeper: Supervisor, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not all(child.running() for child in keeper.children):
            raise SystemExit("taskstream: a process exited during start-up")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"taskstream: {url} did not become ready in {timeout:g} s")


if __name__ == "__main__":
    main()
