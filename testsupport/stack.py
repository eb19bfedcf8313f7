"""The real exchange as subprocesses, for end-to-end tests (browser, CCXT, faults).

``LiveStack`` runs what ``make run`` runs — gunicorn (pages and the API), daphne (WebSockets)
and ``run_matcher`` — against the test database and the test Redis database, with
production-like settings (``DEBUG`` off). Tests create data through the ORM and services
(committed: the fixture uses ``transactional_db``) and talk to the processes over HTTP and
WebSockets. Each process's stderr is kept under ``var/test-artifacts/stack/`` because a
failing end-to-end test is mostly debugged from there.

The exchange's own modules are imported inside the functions that use them: bench/soak.py
imports this module (``STACK_SECRET_KEY``) before it has configured Django, which importing
models would need.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import psycopg
import redis
from django.conf import settings
from django.db import connection
from django.test import override_settings

from exchange_site.redis_clients import redis_client

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "var" / "test-artifacts"
STACK_LOGS = ARTIFACTS / "stack"
STARTUP_TIMEOUT = 30.0
# The stack's signing key; a process that issues tokens or API keys for it (bench/soak.py)
# must use the same one.
STACK_SECRET_KEY = "live-stack-test-secret-key-not-for-production-0123456789"
PR_SET_PDEATHSIG = 1
_static_collected: set[str] = set()


def _die_with_parent() -> None:
    """Runs in the child before exec: a killed test run must not leave servers behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the fixture's teardown still stops the processes


_PORTS_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, and never one this process handed out before: the kernel
    can give two calls in a row the same port, and a stack whose web and ws ports coincide
    answers WebSocket handshakes with gunicorn (one live-stack test failed so, with a 404)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _PORTS_HANDED_OUT:
            _PORTS_HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free TCP port")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def database_url() -> str:
    """The URL of the database the test process is using right now (the test database)."""
    database = settings.DATABASES["default"]
    host = database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    user = database.get("USER") or "postgres"
    return f"postgres://{user}@{host}:{port}/{database['NAME']}"


class LiveStack:
    """gunicorn + daphne + the matcher on free ports; ``start()`` then ``stop()``. A Celery
    worker is started only on request (``start_worker``)."""

    def __init__(
        self,
        name: str = "stack",
        web_workers: int = 2,
        *,
        database_url: str | None = None,
        redis_url: str | None = None,
        poll_seconds: float = 0.2,
        append_logs: bool = False,
        extra_env: dict[str, str] | None = None,
    ):
        """``database_url`` / ``redis_url``: run against other servers than the test
        database and Redis (fault tests break private ones; see ``testsupport.faults``).
        ``append_logs``: a restarted process appends to its log instead of starting it
        afresh (the soak restarts processes many times and wants every incarnation).
        ``extra_env``: more settings for every process (e.g. the mail server's address)."""
        self.name = name
        self.database_url = database_url
        self.redis_url = redis_url
        self.poll_seconds = poll_seconds
        self.append_logs = append_logs
        self.web_workers = web_workers
        self.extra_env = dict(extra_env or {})
        self.web_port = free_port()
        self.ws_port = free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.ws_url = f"ws://127.0.0.1:{self.ws_port}"
        self.var_dir = ARTIFACTS / "var"
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, object] = {}
        self._log_starts: dict[str, int] = {}
        self._groups: set[str] = set()  # processes started as leaders of their own group

    # --- environment -----------------------------------------------------------------

    def env(self) -> dict[str, str]:
        redis_url = self.redis_url or settings.REDIS_URL
        # Importing exchange_site.asgi in the test process sets DATABASE_POOL=1 in its
        # environment; the WSGI web process must not inherit it (daphne sets it itself).
        inherited = {k: v for k, v in os.environ.items() if k != "DATABASE_POOL"}
        return {
            **inherited,
            "DJANGO_SETTINGS_MODULE": "exchange_site.settings",
            "DEBUG": "0",
            "SECRET_KEY": STACK_SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CSRF_TRUSTED_ORIGINS": f"{self.web_url},http://localhost:{self.web_port}",
            "DATABASE_URL": self.database_url or database_url(),
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "CELERY_RESULT_BACKEND": redis_url,
            "DEMO_DEPOSITS": "1",
            "WS_PORT": str(self.ws_port),
            "WS_PUBLIC_URL": self.ws_url,
            "VAR_DIR": str(self.var_dir),
            "PORT": str(self.web_port),
            "HOST": "127.0.0.1",
            "WEB_CONCURRENCY": str(self.web_workers),
            "PYTHONUNBUFFERED": "1",
            # The test process hashes with MD5 (root conftest); the servers must verify it.
            "PASSWORD_HASHERS": ",".join(settings.PASSWORD_HASHERS),
            **self.extra_env,
        }

    def _log_path(self, name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name)
        return STACK_LOGS / f"{safe}-{name}.log"

    def _spawn(self, name: str, command: list[str], *, group: bool = False) -> subprocess.Popen:
        """``group``: the process leads a process group of its own, so a kill reaches the
        children it forks (Celery's pool) too."""
        STACK_LOGS.mkdir(parents=True, exist_ok=True)
        previous = self._logs.pop(name, None)
        if previous is not None:
            previous.close()
        log = open(self._log_path(name), "ab" if self.append_logs else "wb")  # noqa: SIM115 (closed in stop)
        self._logs[name] = log
        self._log_starts[name] = log.tell()
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            process_group=0 if group else None,
        )
        if group:
            self._groups.add(name)
        else:
            self._groups.discard(name)
        self.processes[name] = process
        return process

    def log_text(self, name: str) -> str:
        """What the current incarnation of process ``name`` has written so far."""
        path = self._log_path(name)
        if not path.exists():
            return ""
        with open(path, "rb") as log:
            log.seek(self._log_starts.get(name, 0))
            return log.read().decode(errors="replace")

    def log_tails(self, lines: int = 80) -> str:
        """The last ``lines`` lines of every process's log (its current incarnation), for a
        failing test's report."""
        parts = []
        for name in sorted(set(self.processes) | set(self._logs)):
            tail = self.log_text(name).splitlines()[-lines:]
            parts.append(f"----- {self.name} {name}: last {len(tail)} lines -----")
            parts.extend(tail)
        return "\n".join(parts)

    def _collect_static(self) -> None:
        # DEBUG is off, so WhiteNoise serves only what collectstatic gathered.
        key = str(self.var_dir)
        if key in _static_collected:
            return
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=self.env(),
            check=True,
        )
        _static_collected.add(key)

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> LiveStack:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self._collect_static()
        self.start_web(wait=False)
        self.start_ws(wait=False)
        self.start_matcher()
        self._wait_listening("web", self.web_port)
        self._wait_listening("ws", self.ws_port)
        return self

    def start_web(self, wait: bool = True) -> None:
        """gunicorn on ``web_port``; ``wait``: until it listens."""
        command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"]
        self._spawn("web", [*command, "exchange_site.wsgi"])
        if wait:
            self._wait_listening("web", self.web_port)

    def start_ws(self, wait: bool = True) -> None:
        """daphne on ``ws_port``; ``wait``: until it listens."""
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.ws_port)]
        self._spawn("ws", [*command, "exchange_site.asgi:application"])
        if wait:
            self._wait_listening("ws", self.ws_port)

    def start_matcher(self, name: str = "matcher", *args: str, wait: bool = True) -> None:
        """``run_matcher`` (more ``args`` if given) as the process ``name``; ``wait``: until
        every market has a heartbeat."""
        command = [sys.executable, "manage.py", "run_matcher"]
        self._spawn(name, [*command, "--poll-seconds", str(self.poll_seconds), *args])
        if wait:
            self._wait_matcher_heartbeat(name)

    def stop_ws(self, kill: bool = False) -> None:
        self._stop("ws", kill=kill)

    def stop_matcher(self, kill: bool = False, name: str = "matcher") -> None:
        self._stop(name, kill=kill)

    def restart_matcher(self) -> None:
        self.stop_matcher()
        self.start_matcher()

    def start_worker(self, name: str = "worker", *args: str, wait: bool = True) -> None:
        """``celery -A exchange_site worker`` (more ``args`` if given) as the process
        ``name``, leading its own process group; ``wait``: until it says it is ready."""
        command = [sys.executable, "-m", "celery", "-A", "exchange_site", "worker"]
        self._spawn(
            name,
            [*command, "--loglevel", "INFO", "--hostname", f"{name}-{self.web_port}@%h", *args],
            group=True,
        )
        if wait:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while " ready." not in self.log_text(name):
                self._check_alive(name)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"The {name} process did not get ready in time.")
                time.sleep(0.1)

    def stop_worker(self, kill: bool = False, name: str = "worker") -> None:
        """SIGTERM: Celery's warm shutdown (the running task finishes); ``kill``: SIGKILL to
        the whole group, pool children included, as an out-of-memory kill would."""
        self._stop(name, kill=kill)

    def stop(self) -> None:
        for name in list(self.processes):
            self._stop(name)
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        if self.database_url is None:
            self._wait_sessions_gone()

    def _wait_sessions_gone(self, timeout: float = 10.0) -> None:
        # A server's PostgreSQL backends outlive it by a moment; until they are gone the
        # test database cannot be flushed or dropped.
        deadline = time.monotonic() + timeout
        with connection.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend'"
                )
                if cursor.fetchone()[0] == 0:
                    return
                time.sleep(0.05)

    def _stop(self, name: str, kill: bool = False) -> None:
        process = self.processes.pop(name, None)
        group = name in self._groups
        self._groups.discard(name)
        if process is None:
            return
        if process.poll() is None:
            if kill:
                self._signal(process, signal.SIGKILL, group=group)
            else:
                process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._signal(process, signal.SIGKILL, group=group)
                process.wait(timeout=5)
        if group:
            # Children left behind by a leader that is gone (none after a clean exit).
            self._signal(process, signal.SIGKILL, group=True)

    @staticmethod
    def _signal(process: subprocess.Popen, signum: int, *, group: bool) -> None:
        try:
            if group:
                os.killpg(process.pid, signum)
            else:
                process.send_signal(signum)
        except ProcessLookupError:
            pass

    def _check_alive(self, name: str) -> None:
        process = self.processes.get(name)
        if process is not None and process.poll() is not None:
            log = self._log_path(name)
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"The {name} process exited ({process.returncode}):\n{tail}")

    def _wait_listening(self, name: str, port: int) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _port_open(port):
            self._check_alive(name)
            if time.monotonic() > deadline:
                raise RuntimeError(f"The {name} process did not listen on {port} in time.")
            time.sleep(0.1)

    def _query(self, sql: str) -> list[tuple]:
        """A read on the stack's database (the test database unless ``database_url``)."""
        if self.database_url is None:
            try:
                with connection.cursor() as cursor:
                    cursor.execute(sql)
                    return cursor.fetchall()
            finally:
                # A thread's connection (asyncio.to_thread) would outlive the thread, and
                # stop() would wait out its timeout for it before the flush.
                if threading.current_thread() is not threading.main_thread():
                    connection.close()
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute(sql).fetchall()

    def matcher_beating(self) -> bool:
        """Every market has a fresh matcher heartbeat in the stack's Redis."""
        if self.database_url is None and self.redis_url is None:
            from trading.selectors import matcher_health

            return matcher_health().get("status") == "ok"
        from trading.matcher.publish import heartbeat_key
        from trading.selectors import MATCHER_STALE_SECONDS

        symbols = [row[0] for row in self._query("SELECT symbol FROM trading_market")]
        try:
            beats = redis_client(self.env()["REDIS_URL"]).mget(
                [heartbeat_key(symbol) for symbol in symbols]
            )
        except redis.RedisError:
            return False
        return all(
            beat and time.time() - json.loads(beat)["at"] < MATCHER_STALE_SECONDS for beat in beats
        )

    def _wait_matcher_heartbeat(self, name: str = "matcher") -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.matcher_beating():
            self._check_alive(name)
            if time.monotonic() > deadline:
                raise RuntimeError("The matcher sent no heartbeat in time.")
            time.sleep(0.1)

    # --- helpers for tests -----------------------------------------------------------

    def wait_matcher_idle(self, timeout: float = 10.0) -> None:
        """Block until the matcher has processed every queued command."""
        pending = "SELECT EXISTS (SELECT 1 FROM trading_ordercommand WHERE processed_at IS NULL)"
        deadline = time.monotonic() + timeout
        while self._query(pending)[0][0]:
            self._check_alive("matcher")
            if time.monotonic() > deadline:
                raise AssertionError(f"The matcher did not drain its commands in {timeout} s.")
            time.sleep(0.05)

    def create_user(
        self,
        *,
        email: str,
        username: str,
        password: str = "correct-horse-battery",
        funds: dict[str, str] | None = None,
        verified: bool = True,
    ):
        """A committed user with demo deposits (ledger-correct) of ``funds``; an established
        customer, whose email address is confirmed, unless ``verified`` is False."""
        from accounts.models import User
        from accounts.services import user_register
        from wallets.services import deposit_demo_create

        user = user_register(email=email, username=username, password=password)
        if verified:
            User.objects.filter(pk=user.pk).update(is_verified=True)
            user.is_verified = True
        unlimited = {"*": "1000000000000"}
        with override_settings(
            DEMO_DEPOSITS=True,
            DEMO_DEPOSIT_MAX_PER_REQUEST=unlimited,
            DEMO_DEPOSIT_MAX_PER_DAY=unlimited,
        ):
            for code, amount in (funds or {}).items():
                deposit_demo_create(user=user, asset_code=code, amount=Decimal(amount))
        return user


def seed_markets() -> None:
    """The demo assets and markets (BTC-USD, ETH-USD, SOL-USD, ETH-BTC) and the fee account."""
    from trading.services import markets_seed
    from wallets.selectors import fee_account_get
    from wallets.services import assets_seed

    assets_seed()
    markets_seed()
    fee_account_get()
