"""Database settings the wallets' migrations apply beyond the models' tables."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db


def _reloptions(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [table])
        return cursor.fetchone()[0] or []


def test_the_balance_table_is_vacuumed_after_one_percent_of_dead_rows():
    options = _reloptions("wallets_balance")

    assert "autovacuum_vacuum_scale_factor=0.01" in options
    assert "autovacuum_analyze_scale_factor=0.02" in options


def test_the_autovacuum_migration_runs_again_on_a_table_already_tuned(transactional_db):
    # Databases that ran the old trading 0004 have the settings already; running the
    # migration over them must work and leave them as they are.
    executor = MigrationExecutor(connection)
    executor.migrate([("wallets", "0003_fewer_indexes")])
    assert "autovacuum_vacuum_scale_factor=0.01" not in _reloptions("wallets_balance")
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE wallets_balance SET (autovacuum_vacuum_scale_factor = 0.01, "
            "autovacuum_analyze_scale_factor = 0.02)"
        )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    options = _reloptions("wallets_balance")
    assert "autovacuum_vacuum_scale_factor=0.01" in options
    assert "autovacuum_analyze_scale_factor=0.02" in options
