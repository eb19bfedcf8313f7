"""Bulk statements Django's ORM has no fast form for.

Django's ``bulk_update`` writes one ``CASE WHEN id = ... THEN ...`` per column and row;
for a matcher batch of hundreds of orders PostgreSQL spends most of the time planning
that. ``UPDATE ... FROM (VALUES ...)`` does the same work in one cheap statement.
"""

from collections.abc import Sequence

from django.db import connection, models


def _cast(field: models.Field) -> str:
    return field.db_type(connection)


def bulk_update_rows(
    model: type[models.Model], rows: Sequence[models.Model], fields: Sequence[str]
) -> None:
    """Write ``fields`` of every row (matched by primary key) in as few statements as possible.

    PostgreSQL gets one ``UPDATE ... FROM (VALUES ...)`` per 1,000 rows; other databases
    (SQLite under ``make run``) get Django's ``bulk_update``.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(rows, fields, batch_size=500)
        return
    meta = model._meta
    pk = meta.pk
    columns = [meta.get_field(name) for name in fields]
    assignments = ", ".join(f'"{f.column}" = v."{f.column}"' for f in columns)
    value_columns = ", ".join(f'"{f.column}"' for f in [pk, *columns])
    placeholder = "(" + ", ".join(f"%s::{_cast(f)}" for f in [pk, *columns]) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            params = []
            for row in chunk:
                params.append(pk.get_db_prep_value(row.pk, connection))
                for field in columns:
                    params.append(field.get_db_prep_save(getattr(row, field.attname), connection))
            cursor.execute(
                f'UPDATE "{meta.db_table}" AS t SET {assignments} '
                f"FROM (VALUES {', '.join([placeholder] * len(chunk))}) AS v({value_columns}) "
                f'WHERE t."{pk.column}" = v."{pk.column}"',
                params,
            )
