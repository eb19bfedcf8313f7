from django.db import migrations, models

# Before the constraint: an order with several pending cancels (order_cancel_all raced
# order_cancel) keeps its first one. The others would have been no-ops for the matcher.
DROP_DUPLICATE_PENDING_CANCELS = """
DELETE FROM trading_ordercommand AS c
USING trading_ordercommand AS first
WHERE c.kind = 'cancel' AND c.processed_at IS NULL
  AND first.kind = 'cancel' AND first.processed_at IS NULL
  AND first.order_id = c.order_id AND first.id < c.id
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
