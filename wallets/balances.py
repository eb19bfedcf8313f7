"""The balance primitives every money movement goes through (ARCHITECTURE §4): the only code, with
``wallets.statements``, that writes the balance and ledger tables.

Every balance change is a conditional UPDATE (or an UPDATE of rows locked in
``(user_id, asset_id)`` order) paired with a LedgerEntry written in the same transaction,
so the ledger always explains the balance and concurrent callers can never overdraw.
Other apps reach these through ``wallets.services``, which re-exports them; they live here
so that the simulated chain (``wallets.chain``), which the worker's tasks run, can use them
without importing the services that start those tasks.
"""

from collections.abc import Iterable, Sequence
from decimal import Context, Decimal
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from exchange_site.db import COPY_NULL, array_literal, copy_text, copy_text_field
from exchange_site.decimals import decimal_to_str
from wallets.events import balances_publish_on_commit
from wallets.exceptions import InsufficientBalance, LedgerInconsistency
from wallets.models import (
    AMOUNT_DECIMAL_PLACES,
    AMOUNT_MAX_DIGITS,
    AMOUNT_QUANTUM,
    ZERO,
    Asset,
    Balance,
    LedgerEntry,
)
from wallets.selectors import balance_available


class BalanceChange(NamedTuple):
    """One ledger line to apply: deltas of ``available`` and ``locked`` for one account.

    A NamedTuple rather than a frozen dataclass: the matcher builds thousands per batch.
    """

    user_id: int
    asset_id: int
    kind: str
    reference_type: str
    reference_id: int | None = None
    available: Decimal = ZERO
    locked: Decimal = ZERO
    memo: str = ""


# Wide enough for every storable amount (36 digits): under the default 28-digit context,
# quantizing 1e10 or more to 18 places raises InvalidOperation.
AMOUNT_CONTEXT = Context(prec=AMOUNT_MAX_DIGITS)


def amount_too_large(amount: Decimal) -> bool:
    """More integer digits than a balance column holds."""
    return amount.adjusted() >= AMOUNT_MAX_DIGITS - AMOUNT_DECIMAL_PLACES


def _check_storable(amount: Decimal) -> Decimal:
    # The database keeps 18 places; a finer amount would be rounded there and the ledger
    # would stop matching the balance, so callers must round before they get here.
    if (
        not amount.is_finite()
        or amount_too_large(amount)
        or amount != amount.quantize(AMOUNT_QUANTUM, context=AMOUNT_CONTEXT)
    ):
        raise ValueError(f"amount {amount!r} is not storable with 18 decimal places")
    return amount


def insufficient_balance(
    *, asset: Asset, required: Decimal, available: Decimal
) -> InsufficientBalance:
    """The error for a reserve or debit of ``required`` that ``available`` does not cover
    (422, with both amounts at the asset's precision). Order entry raises it too."""
    return InsufficientBalance(
        f"Insufficient {asset.code} balance.",
        details={
            "asset": asset.code,
            "required": decimal_to_str(required, asset.precision),
            "available": decimal_to_str(available, asset.precision),
        },
    )


def _insufficient(*, user_id: int, asset: Asset | int, required: Decimal) -> InsufficientBalance:
    asset = asset if isinstance(asset, Asset) else Asset.objects.get(pk=asset)
    available = balance_available(user_id=user_id, asset_id=asset.pk)
    return insufficient_balance(asset=asset, required=required, available=available)


def ledger_entry(change: BalanceChange) -> LedgerEntry:
    """The unsaved ledger row of ``change``."""
    return LedgerEntry(
        user_id=change.user_id,
        asset_id=change.asset_id,
        available_delta=change.available,
        locked_delta=change.locked,
        kind=change.kind,
        reference_type=change.reference_type,
        reference_id=change.reference_id,
        memo=change.memo,
    )


def ensure_balance_rows(pairs: Iterable[tuple[int, int]]) -> None:
    """Create the missing balance rows of ``pairs`` (user_id, asset_id), at zero."""
    # INSERT ... ON CONFLICT DO NOTHING: concurrent first credits cannot collide.
    Balance.objects.bulk_create(
        [Balance(user_id=user_id, asset_id=asset_id) for user_id, asset_id in pairs],
        ignore_conflicts=True,
    )


@transaction.atomic(savepoint=False)
def balance_credit(
    *,
    user_id: int,
    asset: Asset,
    amount: Decimal,
    kind: str,
    reference_type: str,
    reference_id: int | None = None,
    memo: str = "",
) -> None:
    """Add ``amount`` (> 0) to the available balance, creating the balance row if needed."""
    _check_storable(amount)
    ensure_balance_rows([(user_id, asset.pk)])
    Balance.objects.filter(user_id=user_id, asset_id=asset.pk).update(
        available=F("available") + amount, updated_at=timezone.now()
    )
    change = BalanceChange(
        user_id, asset.pk, kind, reference_type, reference_id, amount, ZERO, memo
    )
    ledger_entry(change).save()
    balances_publish_on_commit([(user_id, asset.pk)], [change])


@transaction.atomic(savepoint=False)
def balance_reserve(
    *,
    user_id: int,
    asset: Asset,
    amount: Decimal,
    kind: str,
    reference_type: str,
    reference_id: int | None = None,
) -> None:
    """Move ``amount`` from available to locked with one conditional UPDATE.

    Raises ``InsufficientBalance`` (422, with ``required`` and ``available``) when the
    available balance is smaller; nothing changes then.
    """
    _check_storable(amount)
    updated = Balance.objects.filter(
        user_id=user_id, asset_id=asset.pk, available__gte=amount
    ).update(
        available=F("available") - amount,
        locked=F("locked") + amount,
        updated_at=timezone.now(),
    )
    if not updated:
        raise _insufficient(user_id=user_id, asset=asset, required=amount)
    change = BalanceChange(user_id, asset.pk, kind, reference_type, reference_id, -amount, amount)
    ledger_entry(change).save()
    balances_publish_on_commit([(user_id, asset.pk)], [change])


@transaction.atomic(savepoint=False)
def balance_release(
    *,
    user_id: int,
    asset: Asset,
    amount: Decimal,
    kind: str,
    reference_type: str,
    reference_id: int | None = None,
) -> None:
    """Move ``amount`` from locked back to available.

    Raises ``LedgerInconsistency`` if less than ``amount`` is locked: a caller released a
    reserve it never made, which is a bug.
    """
    _check_storable(amount)
    updated = Balance.objects.filter(user_id=user_id, asset_id=asset.pk, locked__gte=amount).update(
        available=F("available") + amount,
        locked=F("locked") - amount,
        updated_at=timezone.now(),
    )
    if not updated:
        raise LedgerInconsistency(details={"asset": asset.code, "release": str(amount)})
    change = BalanceChange(user_id, asset.pk, kind, reference_type, reference_id, amount, -amount)
    ledger_entry(change).save()
    balances_publish_on_commit([(user_id, asset.pk)], [change])


@transaction.atomic(savepoint=False)
def balance_changes_apply(
    *, changes: Sequence[BalanceChange], publish: bool = True
) -> dict[tuple[int, int], tuple[Decimal, Decimal]]:
    """Apply many balance changes as one: the matcher's settlement, a withdrawal's payout.

    Deltas are summed per (user, asset); those rows are locked with SELECT ... FOR UPDATE
    in ``(user_id, asset_id)`` order, so two concurrent callers can never deadlock; every
    change becomes its own LedgerEntry. If any balance would go negative, raises
    ``InsufficientBalance`` and nothing is applied. Returns the new (available, locked)
    of every balance it changed, keyed by (user_id, asset_id). With ``publish`` the owners
    get balance events after commit; the matcher publishes its own from the return value.
    """
    if not changes:
        return {}
    totals: dict[tuple[int, int], list[Decimal]] = {}
    for change in changes:
        available, locked = change.available, change.locked
        # Zero (half of the matcher's amounts) is storable: not checked.
        if available:
            _check_storable(available)
        if locked:
            _check_storable(locked)
        key = (change.user_id, change.asset_id)
        delta = totals.get(key)
        if delta is None:
            totals[key] = [available, locked]
        else:
            delta[0] += available
            delta[1] += locked
    pairs = sorted(totals)
    ensure_balance_rows(pair for pair in pairs if totals[pair][0] > 0 or totals[pair][1] > 0)
    current = _balances_locked(pairs)
    for pair in pairs:
        available_delta, locked_delta = totals[pair]
        row = current.get(pair)
        if row is None or row[1] + available_delta < 0:
            raise _insufficient(user_id=pair[0], asset=pair[1], required=-available_delta)
        if row[2] + locked_delta < 0:
            raise LedgerInconsistency(details={"user_id": pair[0], "asset_id": pair[1]})
    now = timezone.now()
    updates = [(current[pair][0], *totals[pair]) for pair in pairs]
    # The matcher's hot path: three statements whatever the batch size.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE wallets_balance AS b SET available = b.available + v.available, "
            "locked = b.locked + v.locked, updated_at = %s "
            "FROM unnest(%s::text::bigint[], %s::text::numeric[], %s::text::numeric[]) "
            "AS v(id, available, locked) WHERE b.id = v.id",
            [now, *map(array_literal, zip(*updates, strict=True))],
        )
    copy_text(LedgerEntry._meta.db_table, LEDGER_COLUMNS, _ledger_lines(changes, now))
    if publish:
        balances_publish_on_commit(pairs, changes)
    return {
        pair: (current[pair][1] + totals[pair][0], current[pair][2] + totals[pair][1])
        for pair in pairs
    }


LEDGER_COLUMNS = (
    "user_id",
    "asset_id",
    "available_delta",
    "locked_delta",
    "kind",
    "reference_type",
    "reference_id",
    "memo",
    "created_at",
)


def ledger_row(change: BalanceChange, now) -> tuple:
    """The LedgerEntry row of ``change``, in the order of ``LEDGER_COLUMNS`` (for COPY or
    ``exchange_site.db.unnest_insert``)."""
    return (
        change.user_id,
        change.asset_id,
        change.available,
        change.locked,
        change.kind,
        change.reference_type,
        change.reference_id,
        change.memo,
        now,
    )


def _ledger_lines(changes: Sequence[BalanceChange], now) -> str:
    """The ledger rows of ``changes`` (``ledger_row``) in COPY's text format: one f-string
    a line, the batch's few kinds, reference types and memos escaped once each."""
    stamp = copy_text_field(now)
    texts: dict[str, str] = {}

    def text(value: str) -> str:
        escaped = texts.get(value)
        if escaped is None:
            escaped = texts[value] = copy_text_field(value)
        return escaped

    null = COPY_NULL
    return "".join(
        [
            f"{c.user_id}\t{c.asset_id}\t{c.available}\t{c.locked}\t{text(c.kind)}\t"
            f"{text(c.reference_type)}\t{null if c.reference_id is None else c.reference_id}\t"
            f"{text(c.memo)}\t{stamp}\n"
            for c in changes
        ]
    )


def _balances_locked(pairs: list[tuple[int, int]]) -> dict[tuple[int, int], tuple]:
    """Lock the balance rows of ``pairs`` in (user_id, asset_id) order; map each pair to
    (id, available, locked)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT b.id, b.user_id, b.asset_id, b.available, b.locked FROM wallets_balance AS b "
            "JOIN unnest(%s::text::bigint[], %s::text::bigint[]) AS p(user_id, asset_id) "
            "ON b.user_id = p.user_id AND b.asset_id = p.asset_id "
            "ORDER BY b.user_id, b.asset_id FOR UPDATE OF b",
            [array_literal(pair[0] for pair in pairs), array_literal(p[1] for p in pairs)],
        )
        rows = cursor.fetchall()
    return {(user_id, asset_id): (pk, a, lk) for pk, user_id, asset_id, a, lk in rows}


def balances_lock(*, user_id: int, asset_ids: Iterable[int]) -> dict[int, tuple[Decimal, Decimal]]:
    """Lock one user's balance rows of ``asset_ids`` (those that exist) in asset order, the
    order the matcher locks them in too, and return {asset_id: (available, locked)}. For a
    caller that then writes them in one statement of its own (``wallets.statements``).
    Needs a transaction."""
    return {
        asset_id: (available, locked)
        for asset_id, available, locked in Balance.objects.select_for_update()
        .filter(user_id=user_id, asset_id__in=list(asset_ids))
        .order_by("asset_id")
        .values_list("asset_id", "available", "locked")
    }
