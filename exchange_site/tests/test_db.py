"""The bulk statement helpers: array literals round-trip exactly through PostgreSQL."""

import datetime
import time
from decimal import Decimal

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
def test_decimal_sums_are_exact_to_the_last_digit():
    """The ledger check's sums: a float anywhere would lose the 1e-18."""
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
    sums = db.decimal_sums(LedgerEntry.objects.all(), keys, fields)
    assert sums == {(user.pk, usd.pk): [Decimal("400000.300000000000000001"), Decimal(0)]}


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


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("helper", ["copy_rows", "copy_text"])
def test_a_connection_lost_during_a_copy_raises_djangos_operational_error(helper):
    """psycopg's ``copy()`` bypasses Django's cursor wrapper; the helpers wrap it, so a lost
    connection raises ``django.db.OperationalError``, which the matcher's runner takes for a
    database outage (reconnect and restore), not a bug in a batch."""
    from django.db import OperationalError

    from exchange_site import db

    connection.ensure_connection()
    with psycopg.connect(conninfo(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    columns = ["code", "name", "precision"]
    copy = {
        "copy_rows": lambda: db.copy_rows("wallets_asset", columns, [("ZZZ", "Test", 8)]),
        "copy_text": lambda: db.copy_text("wallets_asset", columns, "ZZZ\tTest\t8\n"),
    }[helper]
    with pytest.raises(OperationalError):
        copy()
    connection.close()
