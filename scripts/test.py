"""``make test``'s runner: find (or start) the PostgreSQL and Redis the tests use, run pytest.

    python scripts/test.py [pytest arguments]

For each server, the first of:
1. ``DATABASE_URL`` / ``REDIS_URL`` when set;
2. the machine's server on 127.0.0.1:5432 / 6379 when it answers, or once it answers after
   being started the way the machine guide says (when it is installed but stopped);
3. an embedded server under ``var/test/`` (devservers), started here and stopped when pytest
   ends. ``TEST_SERVERS=embedded`` goes straight to this step: what a machine without any
   PostgreSQL or Redis gets.
Exits with pytest's status.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devservers.postgres import PostgresServer  # noqa: E402
from devservers.redis import RedisServer  # noqa: E402

VAR = Path(os.environ.get("VAR_DIR", ROOT / "var")) / "test"
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/exchange"
LOCAL_REDIS = "redis://127.0.0.1:6379/15"
START_POSTGRES = ["pg_ctlcluster", "--skip-systemctl-redirect", "{version}", "main", "start"]
START_REDIS = (
    "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no"
)


def say(message: str) -> None:
    print(f"[test] {message}", file=sys.stderr, flush=True)


def answers(port: int, attempts: int = 1) -> bool:
    for attempt in range(attempts):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            if attempt + 1 < attempts:
                time.sleep(0.2)
    return False


def start_machine_postgres() -> bool:
    """The machine's installed-but-stopped cluster, started as the machine guide says."""
    clusters = Path("/etc/postgresql")
    if not shutil.which("pg_ctlcluster") or not clusters.is_dir() or not any(clusters.iterdir()):
        return False
    version = sorted(path.name for path in clusters.iterdir())[0]
    say("PostgreSQL is not answering on 127.0.0.1:5432; starting the machine's cluster")
    command = [part.format(version=version) for part in START_POSTGRES]
    subprocess.run(command, check=False)
    return answers(5432, attempts=50)


def start_machine_redis() -> bool:
    if not shutil.which("redis-server"):
        return False
    say("Redis is not answering on 127.0.0.1:6379; starting the machine's redis-server")
    subprocess.run(START_REDIS, shell=True, check=False)
    return answers(6379, attempts=50)


def servers_up(env, var: Path = VAR) -> list:
    """Point ``env``'s ``DATABASE_URL`` and ``REDIS_URL`` at servers that answer, by the rules
    of this module's docstring; returns the embedded servers it started (stop them after)."""
    embedded_only = env.get("TEST_SERVERS", "").lower() == "embedded"
    started: list[PostgresServer | RedisServer] = []
    try:
        if env.get("DATABASE_URL") and not embedded_only:
            say("PostgreSQL: DATABASE_URL")
        elif not embedded_only and (answers(5432) or start_machine_postgres()):
            env["DATABASE_URL"] = LOCAL_POSTGRES
            say("PostgreSQL: 127.0.0.1:5432")
        else:
            server = PostgresServer(var / "postgres", durable=False, log_path=var / "postgres.log")
            started.append(server.start())
            env["DATABASE_URL"] = server.ensure_database("exchange")
            say(f"PostgreSQL: embedded {server.version()} on port {server.port} ({var})")

        if env.get("REDIS_URL") and not embedded_only:
            say("Redis: REDIS_URL")
        elif not embedded_only and (answers(6379) or start_machine_redis()):
            env["REDIS_URL"] = LOCAL_REDIS
            say("Redis: 127.0.0.1:6379")
        else:
            redis_server = RedisServer(var / "redis")
            started.append(redis_server.start())
            env["REDIS_URL"] = redis_server.url(15)
            say(f"Redis: embedded on port {redis_server.port}")
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
    return started


def main(argv: list[str]) -> int:
    started = []
    try:
        started = servers_up(os.environ)
        return subprocess.run([sys.executable, "-m", "pytest", *argv], cwd=ROOT).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        for server in reversed(started):
            server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
