"""A ledger line references its balance row instead of its user and its asset.

Every balance change writes its ledger lines with the balance row already locked (or
created) in the same transaction, so a line's (user_id, asset_id) always has a
``wallets_balance`` row, which itself references the user and the asset (and is never
deleted while a line references it). The one composite foreign key keeps every guarantee the
two did and states one more: no line without its balance.

Why: foreign keys are checked per row, at commit (deferred). A matcher batch of 2,000
commands writes ~5,300 ledger lines, so the two checks per line were ~10,600 lookups and
row locks at every commit, about a tenth of the matcher's PostgreSQL CPU (a 20,000-command
drain: 1.26 s against 1.13 s). The old asset check also took a share lock on the asset's
row for every transaction that wrote a line: one row that order entry, deposits and the
matcher all lock at once. The balance rows are the ones these transactions lock anyway.

Django's ``PROTECT`` of users and assets with ledger lines is unchanged (it is Django's,
``db_constraint=False`` only drops the database's two constraints).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# Added NOT VALID, then validated in its own transaction (the migration is not atomic): adding
# a checked foreign key scans the whole ledger under a lock that blocks every balance change,
# while VALIDATE CONSTRAINT scans it under one that lets writes go on. New lines are checked
# from the moment the constraint exists.
ADD = (
    "ALTER TABLE wallets_ledgerentry ADD CONSTRAINT ledger_entry_balance_fk "
    "FOREIGN KEY (user_id, asset_id) REFERENCES wallets_balance (user_id, asset_id) "
    "DEFERRABLE INITIALLY DEFERRED NOT VALID"
)
VALIDATE = "ALTER TABLE wallets_ledgerentry VALIDATE CONSTRAINT ledger_entry_balance_fk"
DROP = "ALTER TABLE wallets_ledgerentry DROP CONSTRAINT ledger_entry_balance_fk"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("wallets", "0007_ledger_fewer_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunSQL(ADD, DROP),
        migrations.RunSQL(VALIDATE, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="ledgerentry",
            name="user",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="asset",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                to="wallets.asset",
            ),
        ),
    ]
