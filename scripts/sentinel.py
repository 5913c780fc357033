"""A Sentinel-managed Redis for the failover test and benchmark: a primary, its replicas and three sentinels,
each a private redis-server on a free port with its files in one directory.

The sentinels watch the primary under the name `jobstream`, with a short `down-after-milliseconds`, so
that killing the primary promotes a replica within a few seconds.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from functools import partial
from pathlib import Path
from typing import Any, cast

import redis

from scripts.harness import START_SECONDS, STOP_SECONDS, free_port, wait_until
from scripts.redis_server import binary

MASTER = "jobstream"
QUORUM = 2
# A primary that has not answered for this long is down (Sentinel's default is 30 s). At 1 s, a Redis that a
# loaded 2-core machine kept off the CPU for a second was voted down too: a second failover right after the first.
DOWN_AFTER_MS = 2000
FAILOVER_TIMEOUT_MS = 5000  # how long a started failover may take before another sentinel tries
FILLER_KEY = "failover-drill:filler"
FILLER_BYTES = 64 << 20  # more than the kernel buffers of a link hold (tcp_rmem's 32 MB + tcp_wmem's 4 MB)
FILLER_PART = 8 << 20
FAILOVER_SECONDS = 30.0  # patience for a whole failover (down-after, the vote, the promotion) on a loaded machine


class Node:
    """One redis-server process (a data node or a sentinel) on a free port."""

    def __init__(self, name: str, args: list[str], workdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.workdir = workdir
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Node:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(
            [*self.args, "--port", str(self.port)], cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
        )
        wait_until(self._answers, START_SECONDS, f"{self.name} to start")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=1, decode_responses=True)

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            return False

    def send(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: the machine is gone, nothing is flushed or handed over."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(STOP_SECONDS)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a paused one could not take the SIGTERM
            self.process.terminate()
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()


class SentinelGroup:
    """A primary, `replicas` replicas and three sentinels; `url` is the REDIS_URL that reaches the primary."""

    def __init__(self, workdir: Path, replicas: int = 1) -> None:
        self.workdir = workdir
        self.replica_count = replicas
        self.nodes: list[Node] = []
        self.sentinels: list[Node] = []
        self.primary: Node | None = None
        self.replicas: list[Node] = []

    def start(self) -> SentinelGroup:
        """Start every process (what started is stopped if one fails). The sentinels answer at once; they need
        a few seconds more to find each other (`wait_watching`)."""
        try:
            server = binary()
            # No persistence: what a failover keeps is what reached a replica. Full syncs start at once.
            data = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0"]
            self.primary = self._add(Node("primary", [server, *data], self.workdir))
            for i in range(self.replica_count):
                of_primary = ["--replicaof", "127.0.0.1", str(self.primary.port)]
                self.replicas.append(self._add(Node(f"replica-{i + 1}", [server, *data, *of_primary], self.workdir)))
            for replica in self.replicas:
                wait_until(partial(_link_up, replica), START_SECONDS, f"{replica.name} to sync")
            for i in range(3):
                self.sentinels.append(self._add(self._sentinel(server, i + 1)))
        except BaseException:
            self.stop()
            raise
        return self

    def _add(self, node: Node) -> Node:
        self.nodes.append(node)
        return node.start()

    def _sentinel(self, server: str, number: int) -> Node:
        assert self.primary is not None
        node = Node(f"sentinel-{number}", [], self.workdir)
        conf = self.workdir / f"sentinel-{number}.conf"  # Sentinel rewrites its own file: one each
        conf.write_text(
            f"bind 127.0.0.1\nport {node.port}\ndir {self.workdir}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.primary.port} {QUORUM}\n"
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
        )
        node.args = [server, str(conf), "--sentinel"]
        return node

    def _watching(self) -> bool:
        for sentinel in self.sentinels:
            state = cast(dict[str, Any], sentinel.client().sentinel_master(MASTER))
            if int(state["num-other-sentinels"]) < 2 or int(state["num-slaves"]) < self.replica_count:
                return False
        return True

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER}/0"

    def primary_client(self) -> redis.Redis:
        """A client of the primary as it is now (replies as text)."""
        assert self.primary is not None
        return self.primary.client()

    def stall_replicas(self) -> None:
        """Stop every replica (SIGSTOP) and fill their links, so that what the primary accepts from now on
        stays in its own memory, as with a partition or a replica far behind: a primary killed now takes it
        along. (A stopped replica alone loses nothing: the kernel keeps receiving for it, and a killed primary's
        kernel still sends what it had; FILLER_BYTES is more than both socket buffers hold.)"""
        assert self.primary is not None
        for replica in self.replicas:
            replica.send(signal.SIGSTOP)
        client = self.primary.client()
        for part in range(FILLER_BYTES // FILLER_PART):
            client.set(f"{FILLER_KEY}:{part}", b"x" * FILLER_PART)

    def resume_replicas(self) -> None:
        """SIGCONT every replica (after `stall_replicas`)."""
        for replica in self.replicas:
            replica.send(signal.SIGCONT)

    def wait_watching(self) -> None:
        """Wait until every sentinel knows the replicas and the other sentinels: only then can they agree that
        the primary is down and promote one."""
        wait_until(self._watching, START_SECONDS, "the sentinels to know each other and the replicas")

    def kill_primary(self) -> Node:
        """SIGKILL the primary (after `wait_watching`); returns it."""
        assert self.primary is not None
        killed = self.primary
        killed.kill()
        return killed

    def wait_failover(self, timeout: float = FAILOVER_SECONDS) -> Node:
        """Wait until every sentinel names a replica as the primary and that replica says it is one."""
        assert self.primary is not None
        old = self.primary.port

        def promoted() -> Node | None:
            ports = {_named_primary(s) for s in self.sentinels}
            if len(ports) != 1 or old in ports:
                return None
            port = ports.pop()
            node = next((r for r in self.replicas if r.port == port), None)
            with contextlib.suppress(redis.RedisError):
                if node is not None and node.client().info("replication")["role"] == "master":
                    return node
            return None

        new = wait_until(promoted, timeout, "a replica to be promoted")
        assert new is not None
        self.primary = new
        self.replicas.remove(new)
        return new

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()


def _named_primary(sentinel: Node) -> int | None:
    with contextlib.suppress(redis.RedisError, TypeError):
        address = cast(tuple[str, int], sentinel.client().sentinel_get_master_addr_by_name(MASTER))
        return int(address[1])
    return None


def _link_up(replica: Node) -> bool:
    with contextlib.suppress(redis.RedisError):
        return replica.client().info("replication").get("master_link_status") == "up"
    return False
