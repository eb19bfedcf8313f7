"""Start a benchmark process on databases of its own: a freshly created PostgreSQL
database (the ledger is append-only, so nothing is reset in place) and one Redis database,
then Django. Import this first; it must run before Django is set up."""

import os
import sys
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent


def recreate_database(url: str) -> None:
    """Drop (disconnecting whoever is on it) and create the database ``url`` names."""
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup(*, database: str, redis_db: int, allowed_hosts: str = "localhost") -> str:
    """Point Django at a fresh ``BENCH_DATABASE_URL`` (default: database ``database`` on the
    local server) and Redis database ``redis_db``, then ``django.setup()``. Returns the
    database URL."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdef0123456789")
    os.environ.setdefault("ALLOWED_HOSTS", allowed_hosts)
    os.environ.setdefault("REDIS_URL", f"redis://127.0.0.1:6379/{redis_db}")
    url = os.environ.get("BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{database}")
    os.environ["DATABASE_URL"] = url
    # Benchmarks fork processes that queue orders: each needs its own connection, which a
    # connection pool (set by exchange_site/asgi.py for daphne, and inherited by anything a
    # process that imported it starts) would share across the fork.
    os.environ["DATABASE_POOL"] = "0"
    recreate_database(url)

    import django

    django.setup()
    return url


def postgres_cpu() -> float | None:
    """CPU seconds used so far by Django's default connection's PostgreSQL backend, when the
    server runs on this machine (``/proc``); None otherwise."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
