from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import migrations

FEE_ACCOUNT_EMAIL = "fees@exchange.internal"
FEE_ACCOUNT_USERNAME = "exchange-fees"

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION wallets_ledgerentry_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'wallets_ledgerentry is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER wallets_ledgerentry_append_only
    BEFORE UPDATE OR DELETE ON wallets_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION wallets_ledgerentry_append_only();
"""

DROP_APPEND_ONLY_SQL = """
DROP TRIGGER IF EXISTS wallets_ledgerentry_append_only ON wallets_ledgerentry;
DROP FUNCTION IF EXISTS wallets_ledgerentry_append_only();
"""


def create_fee_account(apps, schema_editor):
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    User.objects.get_or_create(
        email=FEE_ACCOUNT_EMAIL,
        defaults={
            "username": FEE_ACCOUNT_USERNAME,
            "full_name": "Exchange fee account",
            "is_system": True,
            "is_active": False,  # a system account never logs in
            "password": make_password(None),
        },
    )


def append_only_trigger(apps, schema_editor):
    schema_editor.execute(APPEND_ONLY_SQL, params=None)


def drop_append_only_trigger(apps, schema_editor):
    schema_editor.execute(DROP_APPEND_ONLY_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0001_initial"),
        ("accounts", "0002_user_is_system"),
    ]

    operations = [
        migrations.RunPython(create_fee_account, migrations.RunPython.noop),
        migrations.RunPython(append_only_trigger, drop_append_only_trigger),
    ]
