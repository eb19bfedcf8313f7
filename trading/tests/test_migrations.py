"""Database settings the migrations apply beyond the models' tables."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_the_order_entry_tables_are_vacuumed_after_one_percent_of_dead_rows():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)",
            [["trading_order", "trading_ordercommand", "wallets_balance"]],
        )
        options = dict(cursor.fetchall())

    assert set(options) == {"trading_order", "trading_ordercommand", "wallets_balance"}
    for table, settings in options.items():
        assert "autovacuum_vacuum_scale_factor=0.01" in settings, table
        assert "autovacuum_analyze_scale_factor=0.02" in settings, table
