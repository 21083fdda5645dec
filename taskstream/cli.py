"""The `taskstream` command.

taskstream up       Valkey (unless REDIS_URL is set) + a worker + the web server
taskstream web      the web server only (uvicorn)
taskstream worker   an ARQ worker only
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from jobs import logs
from jobs.config import ConfigError, Settings
from taskstream.embedded import Valkey


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="taskstream", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "web"):
        p = sub.add_parser(name)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
    sub.add_parser("worker")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "up":
            up(settings, args.host, args.port)
        elif args.command == "web":
            web(settings, args.host, args.port)
        else:
            worker(settings)
    except ConfigError as exc:
        sys.exit(f"taskstream: {exc}")


def web(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from server.app import create_app

    settings.require_redis_url()
    logs.configure()
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, lifespan="on")


def worker(settings: Settings) -> None:
    from jobs.worker import run

    logs.configure()
    run(settings)


def up(settings: Settings, host: str, port: int) -> None:
    """Everything on one machine; Ctrl-C (or SIGTERM) stops all of it."""
    env = dict(os.environ)
    valkey = None
    if not settings.redis_url:
        valkey = Valkey(Path(settings.data_dir) / "valkey")
        valkey.start()
        env["REDIS_URL"] = valkey.url
        print(f"taskstream: started Valkey at {valkey.url} (data in {valkey.data_dir})")
    command = [sys.executable, "-m", "taskstream.cli"]
    children = [
        subprocess.Popen([*command, "worker"], env=env),
        subprocess.Popen([*command, "web", "--host", host, "--port", str(port)], env=env),
    ]
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    try:
        url = f"http://{host}:{port}"
        _wait_ready(url + "/readyz", children)
        print(f"taskstream: ready at {url}  (try: curl -X POST {url}/api/v1/demo/tasks)")
        while all(c.poll() is None for c in children):
            time.sleep(0.5)
        print("taskstream: a process exited; stopping the rest")
    except KeyboardInterrupt:
        print("taskstream: stopping")
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        if valkey is not None:
            valkey.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait_ready(url: str, children: list[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.poll() is not None for c in children):
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
