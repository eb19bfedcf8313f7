"""Bulk statements Django's ORM has no fast form for (the matcher's write path).

Django's ``bulk_update`` writes one ``CASE WHEN id = ... THEN ...`` per column and row;
for a matcher batch of hundreds of orders PostgreSQL spends most of the time planning
that. ``UPDATE ... FROM unnest(arrays)`` does the same work in one cheap statement, and
COPY inserts several times faster than a multi-row INSERT.
"""

import re
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

from django.db import DEFAULT_DB_ALIAS, connection, connections, models

_NUMBERS = (int, Decimal)
_BARE_ELEMENT = re.compile(r"[A-Za-z0-9_.:+-]+")


def _cast(field: models.Field) -> str:
    return field.db_type(connection)


def _array_element(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):  # and bool: "True" is valid boolean input
        return str(value)
    text = str(value)
    if _BARE_ELEMENT.fullmatch(text) and text.upper() != "NULL":
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(values: Iterable) -> str:
    """``values`` as one PostgreSQL array literal (``{1,2.50,NULL,"a b"}``), to be cast in
    SQL (``%s::text::numeric[]``). For thousands of elements this is several times faster
    than psycopg adapting a Python list element by element (3.7 against 11.3 ms for a
    matcher batch's five columns of 2,000), and the server parses it as fast."""
    values = list(values)
    if all(type(value) in _NUMBERS for value in values):
        return "{" + ",".join(map(str, values)) + "}"
    # Text and timestamps repeat (a batch's statuses, its one ``updated_at``): each distinct
    # one is escaped once. Numbers are not cached: 1.0 == 1.00, but they are stored apart.
    texts: dict = {}
    elements = []
    for value in values:
        if value is None:
            elements.append("NULL")
        elif type(value) in _NUMBERS:
            elements.append(str(value))
        else:
            key = (type(value), value)
            text = texts.get(key)
            if text is None:
                text = texts[key] = _array_element(value)
            elements.append(text)
    return "{" + ",".join(elements) + "}"


def update_rows(model: type[models.Model], fields: Sequence[str], rows: Sequence[tuple]) -> None:
    """Set ``fields`` on many rows: each row is ``(pk, *values)`` in the order of ``fields``.

    One ``UPDATE ... FROM unnest(<one array per column>)``: a handful of parameters however
    many rows.
    """
    if not rows:
        return
    meta = model._meta
    pk = meta.pk
    columns = [meta.get_field(name) for name in fields]
    assignments = ", ".join(f'"{f.column}" = v."{f.column}"' for f in columns)
    arrays = ", ".join(f"%s::text::{_cast(f)}[]" for f in [pk, *columns])
    names = ", ".join(f'"{f.column}"' for f in [pk, *columns])
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{meta.db_table}" AS t SET {assignments} '
            f"FROM unnest({arrays}) AS v({names}) "
            f'WHERE t."{pk.column}" = v."{pk.column}"',
            [array_literal(column) for column in zip(*rows, strict=True)],
        )


def unnest_insert(model: type[models.Model], fields: Sequence[str], rows: Sequence[tuple]):
    """``INSERT INTO <table> (<fields>) SELECT * FROM unnest(<one array per field>)`` and its
    parameters, for ``rows`` of database values in the order of ``fields``: any number of
    rows in one statement with one parameter per column, which can also be one part of a
    data-modifying ``WITH`` (where COPY cannot go)."""
    meta = model._meta
    key = (model, tuple(fields))
    template = _UNNEST_TEMPLATES.get(key)
    if template is None:
        columns = [meta.get_field(name) for name in fields]
        names = ", ".join(f'"{field.column}"' for field in columns)
        arrays = ", ".join(f"%s::text::{_cast(field)}[]" for field in columns)
        template = _UNNEST_TEMPLATES[key] = (
            f'INSERT INTO "{meta.db_table}" ({names}) SELECT * FROM unnest({arrays})'
        )
    return template, [array_literal(column) for column in zip(*rows, strict=True)]


_UNNEST_TEMPLATES: dict[tuple, str] = {}


def copy_rows(table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """Insert many rows with PostgreSQL's COPY: the fastest way in, several times faster
    than a multi-row INSERT built by ``bulk_create``."""
    if not rows:
        return
    with _copy_in(table, columns) as copy:
        for row in rows:
            copy.write_row(row)


@contextmanager
def _copy_in(table: str, columns: Sequence[str]):
    """psycopg's ``COPY ... FROM STDIN`` on Django's connection, inside Django's error
    wrapper: ``copy()`` bypasses Django's cursor wrapper, and a lost connection must raise
    Django's OperationalError, which the matcher's runner handles."""
    column_list = ", ".join(f'"{column}"' for column in columns)
    with (
        connection.wrap_database_errors,
        connection.cursor() as cursor,
        cursor.cursor.copy(f'COPY "{table}" ({column_list}) FROM STDIN') as copy,
    ):
        yield copy


# COPY's text format: tab between fields, a line per row, backslash escapes, \N for NULL.
COPY_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text_field(value) -> str:
    """``value`` as one field of COPY's text format (what psycopg's ``write_row`` sends for
    it): NULL, a number or a timestamp as PostgreSQL reads it, text escaped."""
    if value is None:
        return COPY_NULL
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def copy_text(table: str, columns: Sequence[str], text: str) -> None:
    """COPY ``text``, rows already in COPY's text format (one line each, fields by
    ``copy_text_field``), into ``columns`` of ``table``. For the largest writes (the
    ledger lines of a matcher batch): building the lines with one f-string per row costs
    half the client CPU of ``copy_rows``'s row-by-row adaptation."""
    if not text:
        return
    with _copy_in(table, columns) as copy:
        copy.write(text)


def next_ids(table: str, count: int) -> list[int]:
    """Reserve ``count`` primary keys of ``table`` from its sequence, so
    rows written by COPY have their ids known beforehand."""
    if count <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def decimal_sums(queryset, keys: Sequence[str], fields: Sequence[str]) -> dict[tuple, list]:
    """``{(key values): [sum of each field]}`` over ``queryset``, exact to the last digit.

    PostgreSQL sums NUMERIC exactly, so the sums are done in SQL.
    """
    rows = queryset.values(*keys).annotate(**{f"_sum_{name}": models.Sum(name) for name in fields})
    return {
        tuple(row[key] for key in keys): [row[f"_sum_{name}"] for name in fields] for row in rows
    }


def insert_select(
    instance: models.Model, expressions: dict[str, str] | None = None
) -> tuple[str, str, list]:
    """The pieces of ``INSERT INTO <table> (<columns>) SELECT <values> ...`` for an unsaved
    ``instance``, as Django's own INSERT would write it (defaults, ``auto_now`` fields,
    value preparation), primary key left to the database. ``expressions`` replaces the
    value of some columns with SQL (e.g. ``{"reference_id": "ord.id"}``). Every value is a
    typed parameter, because a SELECT list gives PostgreSQL nothing to infer types from;
    a NULL is written in the text (typed too), not sent: an order has a dozen of them, and
    without them order entry's statement stays under psycopg's 50 parameters, above which
    psycopg parses the statement's text anew on every execution. The text then differs
    only by which columns are NULL: a few shapes per order type, each parsed and prepared
    once per connection. Returns (column list, value list, parameters)."""
    expressions = expressions or {}
    database = connections[DEFAULT_DB_ALIAS]  # once, not through the proxy for every field
    key = (type(instance), tuple(sorted(expressions.items())))
    template = _INSERT_TEMPLATES.get(key)
    if template is None:
        # The column and cast lists depend only on the model: computing ``db_type`` for
        # every field was most of the cost of building an order's statement.
        fields = [field for field in instance._meta.concrete_fields if not field.primary_key]
        columns = ", ".join(f'"{field.column}"' for field in fields)
        casts = [
            (field.column in expressions, expressions.get(field.column), field.db_type(database))
            for field in fields
        ]
        valued = [
            (field, _PLAIN_FIELDS.get(type(field)))
            for field in fields
            if field.column not in expressions
        ]
        template = _INSERT_TEMPLATES[key] = (columns, casts, valued)
    columns, casts, valued = template
    prepared = []
    for field, plain in valued:
        if plain is not None:
            value = getattr(instance, field.attname)
            if value is None or _plain_value(value, plain):
                prepared.append(value)
                continue
        prepared.append(field.get_db_prep_save(field.pre_save(instance, True), database))
    nulls = tuple(value is None for value in prepared)
    values = _INSERT_VALUES.get((key, nulls))
    if values is None:
        parts, next_null = [], iter(nulls)
        for is_expression, expression, db_type in casts:
            if is_expression:
                parts.append(expression)
            else:
                parts.append(f"NULL::{db_type}" if next(next_null) else f"%s::{db_type}")
        values = _INSERT_VALUES[(key, nulls)] = ", ".join(parts)
    return columns, values, [value for value in prepared if value is not None]


_INSERT_TEMPLATES: dict[tuple, tuple[str, list, list]] = {}
# Fields whose prepared value is the attribute itself when it is None or of the type given
# (a choice is a str): Django's preparation of these returns it unchanged, or an equal
# copy, on PostgreSQL, and it was a fifth of the cost of building order entry's statement.
# Any other field or value goes through ``get_db_prep_save``.
_PLAIN_FIELDS = {
    models.BigIntegerField: int,
    models.BooleanField: bool,
    models.CharField: str,
    models.DecimalField: Decimal,
    models.ForeignKey: int,
    models.IntegerField: int,
    models.PositiveIntegerField: int,
    models.SmallIntegerField: int,
}


def _plain_value(value, kind: type) -> bool:
    if kind is Decimal:
        return isinstance(value, Decimal) and value.is_finite()  # else to_python raises
    if kind is str:
        return isinstance(value, str)  # a choice too (a lazy string is not a str)
    return type(value) is kind  # an int for an int, a bool for a bool, never the other


_INSERT_VALUES: dict[tuple, str] = {}


def row_to_instance(model: type[models.Model], values: Sequence):
    """A model instance from a row holding its concrete fields' values in field order."""
    names = [field.attname for field in model._meta.concrete_fields]
    return model.from_db(connection.alias, names, list(values))


def row_to_instances(models_in_row: Sequence[type[models.Model]], values: Sequence) -> list:
    """One instance per model from a row of joined tables holding each model's concrete
    fields in turn, in the order of ``models_in_row``."""
    instances, start = [], 0
    for model in models_in_row:
        end = start + len(model._meta.concrete_fields)
        instances.append(row_to_instance(model, values[start:end]))
        start = end
    return instances
