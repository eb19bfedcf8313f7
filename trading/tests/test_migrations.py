"""Database settings the migrations apply beyond the models' tables."""

import pytest
from django.db import connection

from trading.models import Order, OrderCommand

pytestmark = pytest.mark.django_db


def test_the_order_entry_tables_are_vacuumed_after_one_percent_of_dead_rows():
    tables = [Order._meta.db_table, OrderCommand._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)", [tables])
        options = dict(cursor.fetchall())

    assert set(options) == set(tables)
    for table, settings in options.items():
        assert "autovacuum_vacuum_scale_factor=0.01" in settings, table
        assert "autovacuum_analyze_scale_factor=0.02" in settings, table
