"""ARCHITECTURE §4: ledger entries are never updated or deleted."""

from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from wallets.models import LedgerEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(user, btc, fund):
    fund(user, btc, "1")
    return LedgerEntry.objects.get(user=user)


def assert_untouched(entry):
    stored = LedgerEntry.objects.get(pk=entry.pk)
    assert (stored.available_delta, stored.memo) == (Decimal(1), "")


def test_ledger_entry_save_of_an_existing_entry_raises(entry):
    entry.memo = "rewritten"

    with pytest.raises(ValueError, match="append-only"):
        entry.save()

    assert_untouched(entry)


def test_ledger_entry_delete_raises(entry):
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()

    assert_untouched(entry)


def test_ledger_queryset_update_is_refused_by_the_database(entry):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(available_delta=Decimal(1000))

    assert_untouched(entry)


def test_ledger_queryset_delete_is_refused_by_the_database(entry):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).delete()

    assert_untouched(entry)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE wallets_ledgerentry SET available_delta = 1000 WHERE id = %s",
        "DELETE FROM wallets_ledgerentry WHERE id = %s",
    ],
)
def test_ledger_raw_sql_update_and_delete_are_refused_by_the_trigger(entry, sql):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [entry.pk])

    assert_untouched(entry)
