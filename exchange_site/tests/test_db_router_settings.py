"""``DATABASE_REPLICA_URLS`` as settings.py reads it. Settings are read once per process, so
each environment runs in a subprocess of its own."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOW = (
    "import json\n"
    "from django.conf import settings\n"
    "print(json.dumps({'databases': settings.DATABASES, 'routers': settings.DATABASE_ROUTERS,"
    " 'middleware': settings.MIDDLEWARE}, default=str))"
)


def _settings(**variables: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_POOL"}
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{SHOW}"],
        cwd=ROOT,
        env={**environment, **variables, "DJANGO_SETTINGS_MODULE": "exchange_site.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_no_replica_urls_means_no_replica_alias_and_no_router():
    result = _settings(DATABASE_REPLICA_URLS="")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert list(shown["databases"]) == ["default"]
    assert shown["routers"] == []


def test_each_replica_url_becomes_an_alias_with_the_primarys_options():
    result = _settings(
        DATABASE_URL="postgres://writer:secret@10.0.0.11:5432/exchange",
        DATABASE_REPLICA_URLS=(
            "postgres://reader:pw@10.0.0.12:5433/exchange?sslmode=require,"
            "postgres://reader:pw@10.0.0.13/exchange?connect_timeout=7"
        ),
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    default, first, second = (
        shown["databases"][alias] for alias in ("default", "replica_0", "replica_1")
    )
    assert list(shown["databases"]) == ["default", "replica_0", "replica_1"]
    assert (first["HOST"], first["PORT"], first["USER"], first["NAME"]) == (
        "10.0.0.12",
        5433,
        "reader",
        "exchange",
    )
    assert second["HOST"] == "10.0.0.13"
    assert first["ENGINE"] == default["ENGINE"] == "exchange_site.postgresql"
    assert first["CONN_MAX_AGE"] == default["CONN_MAX_AGE"]
    assert first["OPTIONS"] == {**default["OPTIONS"], "sslmode": "require", "connect_timeout": 2}
    assert second["OPTIONS"]["connect_timeout"] == 7
    assert first["TEST"]["MIRROR"] == "default"
    assert shown["routers"] == ["exchange_site.db_router.ReplicaRouter"]
    assert "exchange_site.db_router.ReadYourWritesMiddleware" in shown["middleware"]


def test_a_replica_url_that_is_not_postgresql_is_refused():
    result = _settings(DATABASE_REPLICA_URLS="mysql://reader@10.0.0.12/exchange")
    assert result.returncode != 0
    assert "DATABASE_REPLICA_URLS must name PostgreSQL" in result.stderr
