"""Vacuum the balance table sooner than PostgreSQL's defaults do: every accepted order and
every settlement updates balance rows, so the table churns far more than it grows (see
trading 0004, which tunes the order tables the same way and used to tune this one too).

Setting storage parameters is idempotent, so a database where the old trading 0004 already
tuned this table just gets the same values again.
"""

from django.db import migrations

SETTINGS = "autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02"
RESET = "autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor"


class Migration(migrations.Migration):
    dependencies = [("wallets", "0003_fewer_indexes")]

    operations = [
        migrations.RunSQL(
            f"ALTER TABLE wallets_balance SET ({SETTINGS})",
            f"ALTER TABLE wallets_balance RESET ({RESET})",
        )
    ]
