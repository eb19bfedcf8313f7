"""A Redis Sentinel group of real servers for tests: a master, its replicas and three
sentinels (Debian's ``redis-server``, ``redis-server --sentinel`` for the sentinels).

``start_sentinel_group(directory)`` starts one on free ports of 127.0.0.1 and returns a
:class:`SentinelGroup`: ``url(db)`` is the ``sentinel://`` URL the exchange reads,
``kill_master()`` / ``failover()`` move the master, ``wait_for_master()`` waits until the
sentinels agree on a new one. The multi-host test places the same processes on other
addresses (``hosts``) and inside network namespaces (``wrap``: a command prefix per process,
e.g. ``["ip", "netns", "exec", "mh-redis1"]``).

Sentinel is made fast for tests: a master is down after ``down_after_ms`` (1 s) without
answering, and a failover that stalls is retried after ``failover_timeout_ms``.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import redis

from devservers.postgres import free_port
from devservers.redis import redis_server_executable

STARTUP_TIMEOUT = 30.0
FAILOVER_TIMEOUT = 60.0
MASTER_NAME = "exchange"


def _die_with_parent() -> None:
    # A test run killed hard must not leave servers behind (Linux only; harmless elsewhere).
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class RedisProcess:
    """One ``redis-server`` (data node or sentinel) of the group."""

    name: str
    host: str
    port: int
    directory: Path
    command_prefix: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.name}.log"

    def start(self, arguments: list[str]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [*self.command_prefix, redis_server_executable(), *arguments],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.directory / f"{self.name}.stderr", "ab"),  # noqa: SIM115
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def client(self, **kw) -> redis.Redis:
        kw.setdefault("socket_connect_timeout", 1)
        kw.setdefault("socket_timeout", 2)
        return redis.Redis(host=self.host, port=self.port, **kw)

    def answers(self, **kw) -> bool:
        try:
            return bool(self.client(**kw).ping())
        except (redis.RedisError, OSError):
            return False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients or sentinels, as when a host dies."""
        if self.running:
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=10)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: the process answers nothing, but its kernel keeps the connections open
        (as a hung host would); ``resume`` undoes it."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.running:
            self.resume()  # a stopped process would not act on SIGTERM
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


class SentinelGroup:
    """A master, ``replicas`` replicas and ``sentinels`` sentinels, monitored as
    ``master_name``; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        *,
        master_name: str = MASTER_NAME,
        replicas: int = 1,
        sentinels: int = 3,
        password: str | None = None,
        hosts: Sequence[str] | None = None,
        wrap: Callable[[str], list[str]] | None = None,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
    ):
        """``hosts``: the address of each process in order (data nodes, then sentinels);
        default 127.0.0.1 for all, on free ports (Redis's 6379 and 26379 when ``hosts``
        are given, one process an address). ``wrap(name)``: the command prefix that runs
        process ``name`` (``redis0``, ``redis1``…, ``sentinel0``…) on its host."""
        self.directory = Path(directory)
        self.master_name = master_name
        self.password = password
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        names = [f"redis{i}" for i in range(1 + replicas)] + [
            f"sentinel{i}" for i in range(sentinels)
        ]
        if hosts is not None and len(hosts) != len(names):
            raise ValueError(f"{len(names)} hosts needed ({', '.join(names)}), {len(hosts)} given")
        processes = []
        for index, name in enumerate(names):
            if hosts is None:
                host, port = "127.0.0.1", free_port()
            else:
                host, port = hosts[index], 26379 if name.startswith("sentinel") else 6379
            processes.append(
                RedisProcess(
                    name=name,
                    host=host,
                    port=port,
                    directory=self.directory / name,
                    command_prefix=wrap(name) if wrap else [],
                )
            )
        self.nodes = processes[: 1 + replicas]
        self.sentinels = processes[1 + replicas :]
        self.quorum = len(self.sentinels) // 2 + 1

    # --- addresses ------------------------------------------------------------------------

    def url(self, db: int = 0) -> str:
        """The ``sentinel://`` URL of this group (``REDIS_URL``)."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        hosts = ",".join(f"{s.host}:{s.port}" for s in self.sentinels)
        return f"sentinel://{auth}{hosts}/{db}?master={self.master_name}"

    def node_at(self, address: tuple[str, int]) -> RedisProcess:
        for node in self.nodes:
            if node.address == tuple(address):
                return node
        raise LookupError(f"no data node at {address}")

    def master_address(self) -> tuple[str, int]:
        """Where the sentinels say the master is (the first sentinel that answers)."""
        for sentinel in self.sentinels:
            try:
                host, port = sentinel.client(
                    decode_responses=True
                ).sentinel_get_master_addr_by_name(self.master_name)
                return (host, int(port))
            except (redis.RedisError, OSError, TypeError):
                continue
        raise RuntimeError("no sentinel answers")

    def master(self) -> RedisProcess:
        return self.node_at(self.master_address())

    def master_client(self, db: int = 0) -> redis.Redis:
        return self.master().client(db=db, password=self.password)

    # --- life cycle -----------------------------------------------------------------------

    def _node_arguments(self, node: RedisProcess, replica_of: RedisProcess | None) -> list:
        arguments = [
            "--port", str(node.port),
            "--bind", node.host,
            "--protected-mode", "no",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(node.directory),
            "--logfile", str(node.log_path),
        ]  # fmt: skip
        if self.password:
            arguments += ["--requirepass", self.password, "--masterauth", self.password]
        if replica_of is not None:
            arguments += ["--replicaof", replica_of.host, str(replica_of.port)]
        return arguments

    def _sentinel_config(self, sentinel: RedisProcess, master: RedisProcess) -> Path:
        name = self.master_name
        lines = [
            f"port {sentinel.port}",
            f"bind {sentinel.host}",
            "protected-mode no",
            "daemonize no",
            f"dir {sentinel.directory}",
            f"logfile {sentinel.log_path}",
            f"sentinel monitor {name} {master.host} {master.port} {self.quorum}",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {name} 1",
        ]
        if self.password:
            lines.append(f"sentinel auth-pass {name} {self.password}")
        sentinel.directory.mkdir(parents=True, exist_ok=True)
        # Sentinel rewrites its file as it learns (replicas, other sentinels, epochs).
        path = sentinel.directory / "sentinel.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> SentinelGroup:
        """Start every process and wait until the replicas are in sync and each sentinel
        knows the master, every replica and the other sentinels (a failover needs them)."""
        master = self.nodes[0]
        try:
            master.start(self._node_arguments(master, None))
            for node in self.nodes[1:]:
                node.start(self._node_arguments(node, master))
            for sentinel in self.sentinels:
                sentinel.start([str(self._sentinel_config(sentinel, master)), "--sentinel"])
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _ready_problem(self) -> str | None:
        """What is not ready yet, or None."""
        address = None
        for sentinel in self.sentinels:
            try:
                state = sentinel.client(decode_responses=True).sentinel_master(self.master_name)
            except (redis.RedisError, OSError) as exc:
                return f"{sentinel.name}: {exc}"
            if "s_down" in state.get("flags", "") or "o_down" in state.get("flags", ""):
                return f"{sentinel.name} sees the master down"
            if int(state.get("num-other-sentinels", 0)) < len(self.sentinels) - 1:
                return f"{sentinel.name} knows {state.get('num-other-sentinels')} sentinels"
            if int(state.get("num-slaves", 0)) < len(self.nodes) - 1:
                return f"{sentinel.name} knows {state.get('num-slaves')} replicas"
            here = (state["ip"], int(state["port"]))
            if address is not None and here != address:
                return "the sentinels disagree on the master"
            address = here
        master = self.node_at(address)
        for node in self.nodes:
            if node is master:
                continue
            try:
                info = node.client(password=self.password).info("replication")
            except (redis.RedisError, OSError) as exc:
                return f"{node.name}: {exc}"
            if info.get("role") != "slave" or info.get("master_link_status") != "up":
                return f"{node.name} is not in sync with {master.name}"
        return None

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while (problem := self._ready_problem()) is not None:
            for process in (*self.nodes, *self.sentinels):
                if process.process is not None and process.process.poll() is not None:
                    raise RuntimeError(f"{process.name} exited; see {process.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"sentinel group not ready: {problem} ({self.directory})")
            time.sleep(0.1)

    def wait_for_master(self, other_than: tuple[str, int], timeout: float = FAILOVER_TIMEOUT):
        """Wait until every sentinel names a master other than ``other_than`` and that node
        says it is a master; return its address."""
        deadline = time.monotonic() + timeout
        while True:
            addresses = set()
            for sentinel in self.sentinels:
                if not sentinel.running:
                    continue
                try:
                    host, port = sentinel.client(
                        decode_responses=True
                    ).sentinel_get_master_addr_by_name(self.master_name)
                    addresses.add((host, int(port)))
                except (redis.RedisError, OSError, TypeError):
                    addresses.add(None)
            if len(addresses) == 1 and None not in addresses:
                (address,) = addresses
                if address != tuple(other_than):
                    try:
                        role = (
                            self.node_at(address)
                            .client(password=self.password)
                            .info("replication")["role"]
                        )
                    except (redis.RedisError, OSError):
                        role = None
                    if role == "master":
                        return address
            if time.monotonic() > deadline:
                raise RuntimeError(f"no new master after {timeout} s: sentinels say {addresses}")
            time.sleep(0.1)

    def kill_master(self) -> tuple[str, int]:
        """SIGKILL the master (as a host failure would); return its address. The sentinels
        promote a replica ``down_after_ms`` later plus an election."""
        master = self.master()
        master.kill()
        return master.address

    def pause_master(self) -> tuple[str, int]:
        """Freeze the master (``RedisProcess.pause``); return its address. Sentinel promotes
        a replica as if it were dead; resumed, it is made a replica of the new master."""
        master = self.master()
        master.pause()
        return master.address

    def failover(self, timeout: float = FAILOVER_TIMEOUT) -> tuple[str, int]:
        """``SENTINEL FAILOVER``: promote a replica without waiting for the master to fail;
        return the new master once the old one is its replica (and has dropped its clients,
        which Sentinel has it do)."""
        old = self.master_address()
        self.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", self.master_name)
        new = self.wait_for_master(other_than=old, timeout=timeout)
        # Done once the old master is told to replicate the new one: only then does it
        # drop its clients (until then they still read and write it, unharmed).
        self.wait_for_replica(old, timeout=timeout)
        return new

    def wait_for_replica(self, address: tuple[str, int], timeout: float = FAILOVER_TIMEOUT):
        """Wait until the node at ``address`` says it is a replica (Sentinel demotes an old
        master that comes back, and has it drop its clients)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = self.node_at(address).client(password=self.password).info("replication")
                if info["role"] == "slave":
                    return
            except (redis.RedisError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{address} was not made a replica in {timeout} s")
            time.sleep(0.1)

    def restart_node(self, address: tuple[str, int]) -> None:
        """Start a killed data node again, as a replica of the current master (a node that
        comes back empty must not claim to be the master; Sentinel would also demote it)."""
        node = self.node_at(address)
        master = self.master()
        node.start(self._node_arguments(node, master))

    def stop(self) -> None:
        for process in (*self.sentinels, *self.nodes):
            process.stop()

    def __enter__(self) -> SentinelGroup:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_sentinel_group(directory: Path | str, **options) -> SentinelGroup:
    """Start a :class:`SentinelGroup` under ``directory`` and return it (stop it with
    ``stop()``; it is also a context manager)."""
    return SentinelGroup(Path(directory), **options).start()
