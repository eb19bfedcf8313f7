"""The operators' permissions for the withdrawal controls (issue 19): edit the tiers' limits,
grant an account a tier, see the address books and the published liability snapshots. Approving a balance adjustment takes the
same permission as asking for one (``add_balanceadjustment``): the four eyes are two people,
not two roles."""

from django.db import migrations

GROUP = "operators"

PERMISSIONS = [
    ("wallets", "withdrawaltier", "view_withdrawaltier", "Can view withdrawal tier"),
    ("wallets", "withdrawaltier", "change_withdrawaltier", "Can change withdrawal tier"),
    ("wallets", "withdrawalprofile", "view_withdrawalprofile", "Can view withdrawal profile"),
    ("wallets", "withdrawalprofile", "add_withdrawalprofile", "Can add withdrawal profile"),
    ("wallets", "withdrawalprofile", "change_withdrawalprofile", "Can change withdrawal profile"),
    ("wallets", "withdrawaladdress", "view_withdrawaladdress", "Can view withdrawal address"),
    ("wallets", "liabilitysnapshot", "view_liabilitysnapshot", "Can view liability snapshot"),
    ("wallets", "liabilityroot", "view_liabilityroot", "Can view liability root"),
    ("wallets", "liabilityleaf", "view_liabilityleaf", "Can view liability leaf"),
    ("wallets", "liabilitynode", "view_liabilitynode", "Can view liability node"),
]


def grant(apps, schema_editor):
    content_type_model = apps.get_model("contenttypes", "ContentType")
    permission_model = apps.get_model("auth", "Permission")
    group_model = apps.get_model("auth", "Group")
    group, _ = group_model.objects.get_or_create(name=GROUP)
    for app_label, model, codename, name in PERMISSIONS:
        content_type, _ = content_type_model.objects.get_or_create(app_label=app_label, model=model)
        permission, _ = permission_model.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    group = group_model.objects.filter(name=GROUP).first()
    if group:
        codenames = [codename for _, _, codename, _ in PERMISSIONS]
        group.permissions.remove(*permission_model.objects.filter(codename__in=codenames))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_sessions_history_verification"),
        ("wallets", "0006_liability_proofs"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
