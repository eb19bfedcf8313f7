"""Every ledger line references its balance row (wallets 0008): a line for an account and
asset without one is refused when its transaction commits."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from wallets.models import Balance, LedgerEntry, LedgerKind

pytestmark = pytest.mark.django_db(transaction=True)


def _line(user, asset) -> LedgerEntry:
    return LedgerEntry(
        user=user,
        asset=asset,
        available_delta=Decimal(1),
        locked_delta=Decimal(0),
        kind=LedgerKind.ADJUSTMENT,
        reference_type="adjustment",
    )


def test_a_ledger_line_without_its_balance_row_is_refused_at_commit(user, btc):
    assert not Balance.objects.filter(user=user, asset=btc).exists()

    with pytest.raises(IntegrityError, match="ledger_entry_balance_fk"), transaction.atomic():
        _line(user, btc).save()

    assert not LedgerEntry.objects.filter(user=user).exists()


def test_a_ledger_line_of_an_existing_balance_row_commits(user, btc, fund):
    fund(user, btc, "1")
    lines = LedgerEntry.objects.filter(user=user, asset=btc).count()

    with transaction.atomic():
        _line(user, btc).save()

    assert LedgerEntry.objects.filter(user=user, asset=btc).count() == lines + 1


def test_the_constraint_is_validated_for_the_lines_written_before_it():
    # Added NOT VALID and validated after (0008): a constraint left unvalidated would not
    # vouch for the ledger lines older than the migration.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT convalidated, condeferrable, condeferred FROM pg_constraint "
            "WHERE conname = 'ledger_entry_balance_fk'"
        )
        assert cursor.fetchone() == (True, True, True)
