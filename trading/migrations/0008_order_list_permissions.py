"""The operators group may view order lists (OCO pairs) in the admin, as it views orders."""

from django.db import migrations

GROUP = "operators"
PERMISSIONS = [("orderlist", "view_orderlist", "Can view order list")]


def grant(apps, schema_editor):
    content_type_model = apps.get_model("contenttypes", "ContentType")
    permission_model = apps.get_model("auth", "Permission")
    group, _ = apps.get_model("auth", "Group").objects.get_or_create(name=GROUP)
    for model, codename, name in PERMISSIONS:
        content_type, _ = content_type_model.objects.get_or_create(app_label="trading", model=model)
        permission, _ = permission_model.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name=GROUP).first()
    if group:
        group.permissions.remove(
            *apps.get_model("auth", "Permission").objects.filter(
                content_type__app_label="trading",
                codename__in=[codename for _, codename, _ in PERMISSIONS],
            )
        )


class Migration(migrations.Migration):
    dependencies = [("trading", "0007_order_types")]

    operations = [migrations.RunPython(grant, revoke)]
