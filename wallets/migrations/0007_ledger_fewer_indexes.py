"""Two fewer indexes on the ledger, the table the matcher writes most: every trade adds
four to six lines, and each index costs every line an index insertion and its WAL
(a benchmark drain of 20,000 commands wrote 47 MB of WAL, 25 MB of it the ledger's, 20 MB
of that its five indexes).

- ``ledger_reference`` (reference_type, reference_id): no query reads lines by what caused
  them. The API, statements and reports read by user (``ledger_user_asset_id``), the fee
  report by user and date, ``ledger_check`` aggregates the whole table, and the admin's
  search by reference id names no reference type, so it could not use the index either.
- the asset foreign key's index: nothing reads lines by asset alone but the same whole-
  table aggregate; by user and asset, ``ledger_user_asset_id`` serves. Deleting an asset
  (PROTECT) looks for its lines without it, which is an operator's rare action.

``created_at``'s index stays: the admin's date drill-down and the fee report's date range
use it.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("wallets", "0006_liability_proofs")]

    operations = [
        migrations.RemoveIndex(model_name="ledgerentry", name="ledger_reference"),
        migrations.AlterField(
            model_name="ledgerentry",
            name="asset",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                to="wallets.asset",
            ),
        ),
    ]
