"""The "operators" group with exactly the permissions the operator console's jobs need
(issue 8), and the custom permissions of those jobs.

The custom permissions of other apps' models are created here, as Permission rows on their
content types, so that only this app carries migrations for the console. Default view/add
permissions are created here too when missing: Django makes them only after all migrations
(post_migrate), and the group must hold them from the start.
"""

from django.db import migrations

GROUP = "operators"

# (app_label, model, codename, name); the custom ones are marked in their names.
PERMISSIONS = [
    ("accounts", "user", "view_user", "Can view user"),
    ("accounts", "user", "freeze_user", "Can freeze and unfreeze users"),
    ("accounts", "operatoraction", "view_operatoraction", "Can view operator action"),
    ("accounts", "apikey", "view_apikey", "Can view api key"),
    ("trading", "market", "view_market", "Can view market"),
    ("trading", "market", "change_market", "Can change market"),
    ("trading", "market", "change_market_status", "Can halt, resume or set cancel-only"),
    ("trading", "order", "view_order", "Can view order"),
    ("trading", "order", "cancel_order", "Can cancel orders (queue cancel commands)"),
    ("trading", "trade", "view_trade", "Can view trade"),
    ("trading", "ordercommand", "view_ordercommand", "Can view order command"),
    ("wallets", "asset", "view_asset", "Can view asset"),
    ("wallets", "balance", "view_balance", "Can view balance"),
    ("wallets", "balanceadjustment", "view_balanceadjustment", "Can view balance adjustment"),
    ("wallets", "balanceadjustment", "add_balanceadjustment", "Can add balance adjustment"),
    ("wallets", "ledgerentry", "view_ledgerentry", "Can view ledger entry"),
    ("wallets", "ledgercheckrun", "view_ledgercheckrun", "Can view ledger check run"),
    ("wallets", "deposit", "view_deposit", "Can view deposit"),
    ("wallets", "deposit", "confirm_deposit", "Can confirm pending deposits"),
    ("wallets", "depositaddress", "view_depositaddress", "Can view deposit address"),
    ("wallets", "withdrawal", "view_withdrawal", "Can view withdrawal"),
    ("wallets", "withdrawal", "review_withdrawal", "Can approve or reject withdrawals"),
    ("marketdata", "candle", "view_candle", "Can view candle"),
]


def create_operators(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.get_or_create(name=GROUP)
    permissions = []
    for app_label, model, codename, name in PERMISSIONS:
        content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
        permission, _ = Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
        permissions.append(permission)
    group.permissions.set(permissions)


def remove_operators(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    Group.objects.filter(name=GROUP).delete()
    custom = ["freeze_user", "change_market_status", "cancel_order", "confirm_deposit",
              "review_withdrawal"]  # fmt: skip
    Permission.objects.filter(codename__in=custom).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_freeze_apikeys_operator_audit"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("trading", "0002_fewer_indexes"),
        ("wallets", "0003_fewer_indexes"),
        ("marketdata", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_operators, remove_operators)]
