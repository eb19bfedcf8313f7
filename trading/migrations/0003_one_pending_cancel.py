from django.db import migrations, models

# Before the constraint: an order with several pending cancels (order_cancel_all raced
# order_cancel) keeps its first one. The others would have been no-ops for the matcher.
# Portable SQL: SQLite (`make run`) runs this migration too.
DROP_DUPLICATE_PENDING_CANCELS = """
DELETE FROM trading_ordercommand
WHERE kind = 'cancel' AND processed_at IS NULL AND EXISTS (
    SELECT 1 FROM trading_ordercommand AS earlier
    WHERE earlier.kind = 'cancel' AND earlier.processed_at IS NULL
      AND earlier.order_id = trading_ordercommand.order_id
      AND earlier.id < trading_ordercommand.id
)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0002_fewer_indexes"),
    ]

    operations = [
        migrations.RunSQL(DROP_DUPLICATE_PENDING_CANCELS, migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name="ordercommand",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind", "cancel"), ("processed_at__isnull", True)),
                fields=("order",),
                name="one_pending_cancel_per_order",
            ),
        ),
    ]
