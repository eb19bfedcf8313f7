"""The bulk statement helpers: array literals round-trip exactly through PostgreSQL."""

import datetime
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from exchange_site.db import array_literal


def conninfo() -> str:
    """The test database as a libpq connection string, for a second, plain connection."""
    params = connection.get_connection_params()
    return psycopg.conninfo.make_conninfo(
        **{k: v for k, v in params.items() if k in ("dbname", "user", "host", "port", "password")}
    )


def roundtrip(values, pg_type: str) -> list:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::text::{pg_type}[]", [array_literal(values)])
        return cursor.fetchone()[0]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("values", "pg_type"),
    [
        ([1, 2, 9_223_372_036_854_775_807], "bigint"),
        ([Decimal("0.000000000000000001"), Decimal("0E-18"), Decimal("-12.50"), None], "numeric"),
        ([Decimal("1E+3"), Decimal("123456789012345678.123456789012345678")], "numeric(36, 18)"),
        (["", "NULL", "null", "a b", 'quo"te', "back\\slash", "{brace}", "comma,", "é"], "text"),
        (["filled", None, "partially_filled", "market_cancel_only"], "varchar(32)"),
        ([True, False, None], "boolean"),
    ],
)
def test_array_literal_roundtrips(values, pg_type):
    assert roundtrip(values, pg_type) == values


@pytest.mark.django_db
def test_array_literal_roundtrips_timestamps():
    moment = datetime.datetime(2026, 11, 23, 17, 0, 1, 123456, tzinfo=datetime.UTC)
    assert roundtrip([moment, None], "timestamp with time zone") == [moment, None]


def test_empty_array_literal():
    assert array_literal([]) == "{}"


@pytest.mark.django_db
def test_decimal_sums_are_exact_in_sql_and_in_python(monkeypatch):
    """SQLite sums DECIMAL as floating point, so off PostgreSQL the rows are summed in
    Python; both paths must give the same exact totals."""
    from accounts.tests.factories import UserFactory
    from exchange_site import db
    from wallets.models import Asset, LedgerEntry
    from wallets.services import assets_seed, balance_credit

    assets_seed()
    usd = Asset.objects.get(code="USD")
    user = UserFactory()
    for amount in ("0.1", "0.2", "0.000000000000000001", "400000"):
        balance_credit(
            user_id=user.pk,
            asset=usd,
            amount=Decimal(amount),
            kind="deposit",
            reference_type="test",
            reference_id=1,
        )
    keys, fields = ["user_id", "asset_id"], ["available_delta", "locked_delta"]
    in_sql = db.decimal_sums(LedgerEntry.objects.all(), keys, fields)
    monkeypatch.setattr(db.connection, "vendor", "sqlite")
    in_python = db.decimal_sums(LedgerEntry.objects.all(), keys, fields)
    expected = Decimal("400000.300000000000000001")
    assert in_sql == in_python == {(user.pk, usd.pk): [expected, Decimal(0)]}


@pytest.mark.django_db(transaction=True)
def test_health_check_sees_a_connection_the_server_closed_and_the_next_request_reconnects():
    """The backend's health check reads the socket instead of sending ``SELECT 1``: a
    connection PostgreSQL terminated between two requests is replaced, not used (503)."""
    from django.test import Client

    client = Client()
    assert client.get("/api/v1/markets").status_code == 200
    assert connection.is_usable()
    backend_pid = connection.connection.info.backend_pid
    with psycopg.connect(conninfo(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    deadline = time.monotonic() + 5
    while connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not connection.is_usable()

    # What a real server's request_started does (the test client skips it).
    connection.close_if_unusable_or_obsolete()
    assert client.get("/api/v1/markets").status_code == 200
    assert connection.connection.info.backend_pid != backend_pid


def test_the_embedded_sqlite_database_of_make_run_migrates_and_seeds(tmp_path):
    """`make run` without DATABASE_URL uses SQLite: every migration must run there too
    (PostgreSQL-only SQL has to be guarded or portable)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(DEBUG="1", VAR_DIR=str(tmp_path))
    root = Path(__file__).resolve().parents[2]
    for command in (["migrate", "-v0"], ["seed_demo"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "exchange.sqlite3").stat().st_size > 0
