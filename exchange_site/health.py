"""Dependency checks behind ``/health``: each answers quickly even when its service is down."""

import time
from typing import Any

from django.db import connection
from django_redis import get_redis_connection

from exchange_site.db_router import replica_aliases, replicas_probe


def _timed(check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure of the dependency means "down", never a 500
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _database_ping():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis_ping():
    get_redis_connection("default").ping()


def _matcher() -> dict[str, Any]:
    from trading.selectors import matcher_health

    try:
        return matcher_health()
    except Exception as exc:  # a report, never a 500
        return {"status": "unknown", "error": f"{type(exc).__name__}: {exc}"[:300]}


def _replicas() -> list[dict[str, Any]]:
    try:
        return replicas_probe()
    except Exception as exc:  # a report, never a 500
        return [{"status": "unknown", "error": f"{type(exc).__name__}: {exc}"[:300]}]


def health_report() -> tuple[dict[str, Any], bool]:
    """The health document and whether the exchange can serve (database and Redis answer).

    Read replicas are reported when ``DATABASE_REPLICA_URLS`` names some, but never make the
    exchange unhealthy: a replica that is down or lagging only sends reads to the primary."""
    database = _timed(_database_ping)
    redis = _timed(_redis_ping)
    serving = database["status"] == "ok" and redis["status"] == "ok"
    report = {
        "status": "healthy" if serving else "degraded",
        "database": database,
        "redis": redis,
        "matcher": _matcher() if serving else {"status": "unknown"},
    }
    if replica_aliases():
        report["replicas"] = _replicas() if serving else []
    return report, serving
