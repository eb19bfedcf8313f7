"""Hosts made of Linux network namespaces on one private bridge (issue 22).

Each host is a namespace ``mh-<name>`` with loopback and one veth, ``eth0``, whose peer sits on
the bridge ``mhbr0`` in the root namespace. The bridge has 10.77.0.1, so the test process (in
the root namespace) reaches every host; no namespace has a default route and nothing forwards
or masquerades, so the hosts reach each other and the test process, and nothing else.

The namespaces share the filesystem and the process table with the test: every process runs
the checkout's own ``.venv`` python, its logs are plain files, and a host is "powered off" by
taking its link down first (so not even a TCP reset leaves it, as when a machine loses power)
and then SIGKILLing every process inside it.

Everything named ``mh-*`` and the bridge are removed at the start (a killed earlier run leaves
them behind) and at the end.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "mh-"
BRIDGE = "mhbr0"
SUBNET = "10.77.0"
BRIDGE_ADDRESS = f"{SUBNET}.1"
PR_SET_PDEATHSIG = 1
# The names above are fixed, so two runs on one machine (the suite and a run by hand) would
# tear down each other's hosts: the second waits for the first.
LOCK_PATH = Path("/run/lock/exchange-multihost.lock")
LOCK_TIMEOUT = 900.0


class HostsUnavailable(RuntimeError):
    """This machine cannot make network namespaces (not root, no ``ip``, no veth): the
    multi-host test fails with this message instead of skipping."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise HostsUnavailable(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def _die_with_parent() -> None:
    """Runs in the child before exec: a killed test run must not leave servers behind."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def namespace_pids(namespace: str) -> list[int]:
    """Every process whose network namespace is ``namespace``."""
    result = _ip("netns", "pids", namespace, check=False)
    return [int(pid) for pid in result.stdout.split()]


def kill_namespace_processes(namespace: str) -> None:
    for _ in range(50):
        pids = namespace_pids(namespace)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def remove_all() -> None:
    """Remove every ``mh-*`` namespace (killing what runs in it) and the bridge: what a run
    leaves behind, or what a killed earlier run left."""
    listing = _ip("netns", "list", check=False).stdout.split("\n")
    for line in listing:
        name = line.split(" ")[0].strip()
        if name.startswith(PREFIX):
            kill_namespace_processes(name)
            _ip("netns", "delete", name, check=False)
    # A namespace outlives `ip netns delete` while a dying process still holds it, and its
    # veth with it: delete the root ends by name.
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith("mhv-") or name == BRIDGE:
            _ip("link", "delete", name, check=False)


@dataclass
class Host:
    """One network namespace with one address on the bridge."""

    name: str
    address: str
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return f"{PREFIX}{self.name}"

    @property
    def veth(self) -> str:
        # Interface names are at most 15 characters.
        return f"mhv-{self.name}"[:15]

    def log_path(self, process: str) -> Path:
        return self.log_dir / f"{self.name}-{process}.log"

    def spawn(
        self, process: str, command: list[str], *, env: dict[str, str], cwd: Path
    ) -> subprocess.Popen:
        """Run ``command`` inside this host as ``process``; its output goes to its log. Each
        process leads its own session, so a kill reaches the workers it forks."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(process), "ab") as log:
            popen = subprocess.Popen(
                ["ip", "netns", "exec", self.namespace, *command],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.processes[process] = popen
        return popen

    def run(self, command: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 300):
        """Run ``command`` inside this host to completion; the CompletedProcess."""
        return subprocess.run(
            ["ip", "netns", "exec", self.namespace, *command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def log_text(self, process: str) -> str:
        path = self.log_path(process)
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self, process: str) -> bool:
        popen = self.processes.get(process)
        return popen is not None and popen.poll() is None

    def kill(self, process: str, signum: int = signal.SIGKILL) -> None:
        """Signal one process's whole session (its forked workers too)."""
        popen = self.processes.get(process)
        if popen is None or popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=15)

    def power_off(self) -> None:
        """The host dies: its link goes down first, so no FIN or reset reaches anyone (peers
        learn only from their own timeouts and health checks), then everything in it is
        SIGKILLed."""
        _ip("-n", self.namespace, "link", "set", "eth0", "down")
        kill_namespace_processes(self.namespace)
        for popen in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=5)


class Network:
    """The bridge and the hosts on it; ``add(name, last_octet)`` makes a host."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.hosts: dict[str, Host] = {}
        self._lock = None

    def up(self) -> Network:
        if os.geteuid() != 0:
            raise HostsUnavailable("network namespaces need root; the multi-host test runs as root")
        self._take_lock()
        remove_all()
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        return self

    def add(self, name: str, last_octet: int) -> Host:
        host = Host(name=name, address=f"{SUBNET}.{last_octet}", log_dir=self.log_dir)
        ns = host.namespace
        _ip("netns", "add", ns)
        _ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", host.veth, "master", BRIDGE)
        _ip("link", "set", host.veth, "up")
        _ip("-n", ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        self.hosts[name] = host
        return host

    def down(self) -> None:
        for host in self.hosts.values():
            for popen in host.processes.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(popen.pid, signal.SIGKILL)
        remove_all()
        self.hosts.clear()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _take_lock(self) -> None:
        LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(LOCK_PATH, "w")  # noqa: SIM115 (held until down())
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise HostsUnavailable(
                        f"another multi-host run holds {LOCK_PATH} for {LOCK_TIMEOUT:.0f} s"
                    ) from None
                time.sleep(0.5)
