"""Everything that changes money. Balances change here and only here (DESIGN §4).

Every balance change is a conditional UPDATE (or an UPDATE of rows locked in
``(user_id, asset_id)`` order) paired with a LedgerEntry written in the same transaction,
so the ledger always explains the balance and concurrent callers can never overdraw.
"""

import secrets
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Context, Decimal
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from accounts.audit import operator_action_record, reason_require
from accounts.exceptions import AccountFrozen
from accounts.models import User
from accounts.twofactor import two_factor_require
from exchange_site.db import array_literal, copy_rows
from exchange_site.decimals import decimal_to_str
from wallets.events import balances_publish_on_commit
from wallets.exceptions import (
    AssetInactive,
    DemoDepositsDisabled,
    DepositLimitExceeded,
    DepositNotFound,
    DepositStateConflict,
    InsufficientBalance,
    LedgerInconsistency,
    WithdrawalNotFound,
    WithdrawalStateConflict,
)
from wallets.ledger_check import ledger_check
from wallets.models import (
    AMOUNT_DECIMAL_PLACES,
    AMOUNT_MAX_DIGITS,
    AMOUNT_QUANTUM,
    ZERO,
    Asset,
    Balance,
    BalanceAdjustment,
    Deposit,
    DepositAddress,
    LedgerCheckRun,
    LedgerEntry,
    LedgerKind,
    Withdrawal,
)
from wallets.selectors import asset_get_by_code, balance_available, fee_account_get

# --- Balance primitives -----------------------------------------------------------------


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
_AMOUNT_CONTEXT = Context(prec=AMOUNT_MAX_DIGITS)


def _too_large(amount: Decimal) -> bool:
    return amount.adjusted() >= AMOUNT_MAX_DIGITS - AMOUNT_DECIMAL_PLACES


def _check_storable(amount: Decimal) -> Decimal:
    # The database keeps 18 places; a finer amount would be rounded there and the ledger
    # would stop matching the balance, so callers must round before they get here.
    if (
        not amount.is_finite()
        or _too_large(amount)
        or amount != amount.quantize(AMOUNT_QUANTUM, context=_AMOUNT_CONTEXT)
    ):
        raise ValueError(f"amount {amount!r} is not storable with 18 decimal places")
    return amount


def _insufficient(*, user_id: int, asset: Asset | int, required: Decimal) -> InsufficientBalance:
    asset = asset if isinstance(asset, Asset) else Asset.objects.get(pk=asset)
    available = balance_available(user_id=user_id, asset_id=asset.pk)
    return InsufficientBalance(
        f"Insufficient {asset.code} balance.",
        details={
            "asset": asset.code,
            "required": decimal_to_str(required, asset.precision),
            "available": decimal_to_str(available, asset.precision),
        },
    )


def _ledger(change: BalanceChange) -> LedgerEntry:
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


def _ensure_balance_rows(pairs: Iterable[tuple[int, int]]) -> None:
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
    _ensure_balance_rows([(user_id, asset.pk)])
    Balance.objects.filter(user_id=user_id, asset_id=asset.pk).update(
        available=F("available") + amount, updated_at=timezone.now()
    )
    _ledger(
        BalanceChange(user_id, asset.pk, kind, reference_type, reference_id, amount, ZERO, memo)
    ).save()
    balances_publish_on_commit([(user_id, asset.pk)])


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
    _ledger(
        BalanceChange(user_id, asset.pk, kind, reference_type, reference_id, -amount, amount)
    ).save()
    balances_publish_on_commit([(user_id, asset.pk)])


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
    _ledger(
        BalanceChange(user_id, asset.pk, kind, reference_type, reference_id, amount, -amount)
    ).save()
    balances_publish_on_commit([(user_id, asset.pk)])


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
    totals: dict[tuple[int, int], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for change in changes:
        _check_storable(change.available)
        _check_storable(change.locked)
        delta = totals[(change.user_id, change.asset_id)]
        delta[0] += change.available
        delta[1] += change.locked
    pairs = sorted(totals)
    _ensure_balance_rows(pair for pair in pairs if totals[pair][0] > 0 or totals[pair][1] > 0)
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
    if connection.vendor == "postgresql":
        # The matcher's hot path: three statements whatever the batch size.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE wallets_balance AS b SET available = b.available + v.available, "
                "locked = b.locked + v.locked, updated_at = %s "
                "FROM unnest(%s::text::bigint[], %s::text::numeric[], %s::text::numeric[]) "
                "AS v(id, available, locked) WHERE b.id = v.id",
                [now, *map(array_literal, zip(*updates, strict=True))],
            )
        copy_rows(LedgerEntry._meta.db_table, LEDGER_COLUMNS, [ledger_row(c, now) for c in changes])
    else:
        for balance_id, available_delta, locked_delta in updates:
            Balance.objects.filter(pk=balance_id).update(
                available=F("available") + available_delta,
                locked=F("locked") + locked_delta,
                updated_at=now,
            )
        LedgerEntry.objects.bulk_create([_ledger(change) for change in changes], batch_size=1000)
    if publish:
        balances_publish_on_commit(pairs)
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


def _balances_locked(pairs: list[tuple[int, int]]) -> dict[tuple[int, int], tuple]:
    """Lock the balance rows of ``pairs`` in (user_id, asset_id) order; map each pair to
    (id, available, locked)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT b.id, b.user_id, b.asset_id, b.available, b.locked "
                "FROM wallets_balance AS b "
                "JOIN unnest(%s::text::bigint[], %s::text::bigint[]) AS p(user_id, asset_id) "
                "ON b.user_id = p.user_id AND b.asset_id = p.asset_id "
                "ORDER BY b.user_id, b.asset_id FOR UPDATE OF b",
                [array_literal(pair[0] for pair in pairs), array_literal(p[1] for p in pairs)],
            )
            rows = cursor.fetchall()
        return {(user_id, asset_id): (pk, a, lk) for pk, user_id, asset_id, a, lk in rows}
    match = Q()
    for user_id, asset_id in pairs:
        match |= Q(user_id=user_id, asset_id=asset_id)
    rows = Balance.objects.select_for_update().filter(match).order_by("user_id", "asset_id")
    return {(r.user_id, r.asset_id): (r.pk, r.available, r.locked) for r in rows}


# --- Amount validation ------------------------------------------------------------------


def amount_validate(*, asset: Asset, amount: Decimal, field: str = "amount") -> Decimal:
    """Refuse an amount that may not enter or leave in ``asset``: not a finite positive
    number, more decimal places than the asset's precision, or too large to store.

    Raises Django's ``ValidationError`` keyed by ``field`` (rendered as 400).
    """
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValidationError({field: ["A finite number is required."]})
    if amount <= 0:
        raise ValidationError({field: ["Must be greater than zero."]})
    # Size first, and exact comparisons only: normalize() under the default context
    # overflows on 1e1000000 and rounds 1.0000000000000000000000000000001 to 1.
    if _too_large(amount):
        raise ValidationError({field: ["Too large."]})
    if amount != amount.quantize(asset.quantum, context=_AMOUNT_CONTEXT):
        raise ValidationError(
            {field: [f"{asset.code} allows at most {asset.precision} decimal places."]}
        )
    return amount.quantize(AMOUNT_QUANTUM, context=_AMOUNT_CONTEXT)


def address_validate(address: str) -> str:
    """On the simulated chain an address is any 1–128 printable characters."""
    if not isinstance(address, str) or not 1 <= len(address) <= 128 or not address.isprintable():
        raise ValidationError({"address": ["An address is 1 to 128 printable characters."]})
    return address


def _active_asset(asset_code: str) -> Asset:
    asset = asset_get_by_code(code=asset_code)
    if not asset.is_active:
        raise AssetInactive(details={"asset": asset.code})
    return asset


# --- Deposits ---------------------------------------------------------------------------


def _deposit_cap(caps: dict[str, str], asset: Asset) -> Decimal:
    return Decimal(str(caps.get(asset.code, caps.get("*", "0"))))


@transaction.atomic
def deposit_demo_create(*, user: User, asset_code: str, amount: Decimal) -> Deposit:
    """Credit a demo deposit at once (the faucet of ``make run``).

    Only with ``DEMO_DEPOSITS`` on (else ``DemoDepositsDisabled``, 403). Capped per
    request and per user, asset and UTC day by ``DEMO_DEPOSIT_MAX_PER_REQUEST`` and
    ``DEMO_DEPOSIT_MAX_PER_DAY`` (``DepositLimitExceeded``, 422). Locks the user's balance
    row of the asset so concurrent requests cannot together pass the daily cap.
    """
    if not settings.DEMO_DEPOSITS:
        raise DemoDepositsDisabled()
    asset = _active_asset(asset_code)
    amount = amount_validate(asset=asset, amount=amount)
    per_request = _deposit_cap(settings.DEMO_DEPOSIT_MAX_PER_REQUEST, asset)
    if amount > per_request:
        raise DepositLimitExceeded(
            f"At most {decimal_to_str(per_request)} {asset.code} per demo deposit.",
            details={"asset": asset.code, "max_per_request": decimal_to_str(per_request)},
        )
    _ensure_balance_rows([(user.pk, asset.pk)])
    Balance.objects.select_for_update().get(user_id=user.pk, asset_id=asset.pk)
    day_start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    today = (
        Deposit.objects.filter(
            user_id=user.pk, asset=asset, is_demo=True, created_at__gte=day_start
        ).aggregate(total=Sum("amount"))["total"]
        or ZERO
    )
    per_day = _deposit_cap(settings.DEMO_DEPOSIT_MAX_PER_DAY, asset)
    if today + amount > per_day:
        raise DepositLimitExceeded(
            f"At most {decimal_to_str(per_day)} {asset.code} of demo deposits per day.",
            details={
                "asset": asset.code,
                "max_per_day": decimal_to_str(per_day),
                "deposited_today": decimal_to_str(today, asset.precision),
            },
        )
    deposit = Deposit.objects.create(
        user=user,
        asset=asset,
        amount=amount,
        status=Deposit.Status.CONFIRMED,
        tx_id=f"demo-{uuid.uuid4().hex}",
        confirmations=asset.confirmations_required,
        confirmations_required=asset.confirmations_required,
        is_demo=True,
        confirmed_at=timezone.now(),
    )
    balance_credit(
        user_id=user.pk,
        asset=asset,
        amount=amount,
        kind=LedgerKind.DEPOSIT,
        reference_type="deposit",
        reference_id=deposit.pk,
    )
    return deposit


def _new_address(asset: Asset) -> str:
    return f"sim{asset.code.lower()}1{secrets.token_hex(20)}"


def deposit_address_get_or_create(*, user: User, asset_code: str) -> DepositAddress:
    """The user's stable deposit address for an asset, made on first request."""
    asset = _active_asset(asset_code)
    existing = DepositAddress.objects.filter(user=user, asset=asset).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            return DepositAddress.objects.create(
                user=user, asset=asset, address=_new_address(asset)
            )
    except IntegrityError:
        # A concurrent request created it first.
        return DepositAddress.objects.get(user=user, asset=asset)


@transaction.atomic
def deposit_chain_detect(*, address: str, amount: Decimal, tx_id: str = "") -> Deposit:
    """The simulated chain saw ``amount`` arrive at ``address``: record a pending deposit.

    It is credited once ``chain_block_mine`` has counted the asset's confirmations (at once
    when the asset needs none). Raises ``DepositNotFound`` (404) for an unknown address.
    """
    target = DepositAddress.objects.select_related("asset").filter(address=address).first()
    if target is None:
        raise DepositNotFound("No deposit address matches.", details={"address": address})
    asset = target.asset
    amount = amount_validate(asset=asset, amount=amount)
    deposit = Deposit.objects.create(
        user_id=target.user_id,
        asset=asset,
        amount=amount,
        tx_id=tx_id or f"simtx-{uuid.uuid4().hex}",
        address=address,
        confirmations_required=asset.confirmations_required,
    )
    if asset.confirmations_required == 0:
        deposit_confirm(deposit_id=deposit.pk)
        deposit.refresh_from_db()
    return deposit


@transaction.atomic
def deposit_confirm(*, deposit_id: int) -> bool:
    """Credit a pending deposit exactly once. Locks the deposit row.

    Returns False (and changes nothing) when it was already confirmed.
    """
    deposit = (
        Deposit.objects.select_for_update(of=("self",)).select_related("asset").get(pk=deposit_id)
    )
    if deposit.status != Deposit.Status.PENDING:
        return False
    deposit.status = Deposit.Status.CONFIRMED
    deposit.confirmations = max(deposit.confirmations, deposit.confirmations_required)
    deposit.confirmed_at = timezone.now()
    deposit.save(update_fields=["status", "confirmations", "confirmed_at"])
    balance_credit(
        user_id=deposit.user_id,
        asset=deposit.asset,
        amount=deposit.amount,
        kind=LedgerKind.DEPOSIT,
        reference_type="deposit",
        reference_id=deposit.pk,
    )
    return True


@transaction.atomic
def deposit_confirm_by_operator(*, deposit_id: int, operator: User, reason: str) -> Deposit:
    """An operator confirms a pending deposit now (the demo chain: no waiting for blocks)
    and credits it, recorded in the audit trail. Locks the deposit row. Raises
    ``ValidationError`` without a reason, ``DepositNotFound`` (404) and
    ``DepositStateConflict`` (409) when it is no longer pending."""
    reason = reason_require(reason)
    if not Deposit.objects.filter(pk=deposit_id).exists():
        raise DepositNotFound(details={"deposit_id": deposit_id})
    if not deposit_confirm(deposit_id=deposit_id):
        raise DepositStateConflict(details={"deposit_id": deposit_id})
    deposit = Deposit.objects.select_related("asset").get(pk=deposit_id)
    operator_action_record(
        actor=operator,
        action="deposit_confirm",
        target=deposit,
        reason=reason,
        details={"amount": decimal_to_str(deposit.amount), "asset": deposit.asset.code},
    )
    return deposit


def chain_block_mine() -> int:
    """One block of the simulated chain: every pending deposit gains a confirmation, and
    those that reach their asset's requirement are credited. Returns how many were."""
    Deposit.objects.filter(status=Deposit.Status.PENDING).update(
        confirmations=F("confirmations") + 1
    )
    ready = Deposit.objects.filter(
        status=Deposit.Status.PENDING, confirmations__gte=F("confirmations_required")
    ).values_list("pk", flat=True)
    return sum(deposit_confirm(deposit_id=pk) for pk in list(ready))


# --- Withdrawals ------------------------------------------------------------------------


@transaction.atomic
def withdrawal_request(
    *,
    user: User,
    asset_code: str,
    amount: Decimal,
    address: str,
    otp_code: str | None = None,
    ip: str | None = None,
) -> Withdrawal:
    """Ask to send ``amount`` to ``address``; reserves amount + the asset's fee.

    Raises ``AccountFrozen`` (403), ``ValidationError`` (400) for a bad amount or address or
    one under the asset's minimum, ``InsufficientBalance`` (422) when available < amount + fee,
    and with two-factor authentication on ``OtpRequired`` / ``OtpInvalid`` (403) or
    ``LoginRateLimited`` (429) unless ``otp_code`` is a current code (the check locks the
    user's two-factor device row, before the balance row; ``ip`` is the client's, for the
    lockout). A code is spent only when the withdrawal is made: a refusal rolls it back.
    """
    if user.is_frozen:
        raise AccountFrozen()
    asset = _active_asset(asset_code)
    amount = amount_validate(asset=asset, amount=amount)
    address = address_validate(address)
    if amount < asset.min_withdrawal:
        raise ValidationError(
            {
                "amount": [
                    f"The minimum {asset.code} withdrawal is "
                    f"{decimal_to_str(asset.min_withdrawal, asset.precision)}."
                ]
            }
        )
    if _too_large(amount + asset.withdrawal_fee):
        # amount + fee is what gets reserved; past 18 integer digits it cannot be stored.
        raise ValidationError({"amount": ["Too large."]})
    two_factor_require(user=user, otp_code=otp_code, ip=ip)
    withdrawal = Withdrawal.objects.create(
        user=user, asset=asset, amount=amount, fee=asset.withdrawal_fee, address=address
    )
    balance_reserve(
        user_id=user.pk,
        asset=asset,
        amount=withdrawal.total,
        kind=LedgerKind.WITHDRAWAL,
        reference_type="withdrawal",
        reference_id=withdrawal.pk,
    )
    return withdrawal


def _withdrawal_locked(*, withdrawal_id: int, user: User | None = None) -> Withdrawal:
    withdrawals = Withdrawal.objects.select_for_update(of=("self",)).select_related("asset")
    if user is not None:
        withdrawals = withdrawals.filter(user=user)
    withdrawal = withdrawals.filter(pk=withdrawal_id).first()
    if withdrawal is None:
        raise WithdrawalNotFound()
    return withdrawal


def _state_conflict(withdrawal: Withdrawal, action: str) -> WithdrawalStateConflict:
    return WithdrawalStateConflict(
        f"A {withdrawal.status} withdrawal cannot be {action}.",
        details={"status": withdrawal.status},
    )


def _withdrawal_release(withdrawal: Withdrawal) -> None:
    balance_release(
        user_id=withdrawal.user_id,
        asset=withdrawal.asset,
        amount=withdrawal.total,
        kind=LedgerKind.WITHDRAWAL,
        reference_type="withdrawal",
        reference_id=withdrawal.pk,
    )


@transaction.atomic
def withdrawal_cancel(*, user: User, withdrawal_id: int) -> Withdrawal:
    """The owner cancels a withdrawal still ``requested``; its reserve is released.

    Locks the withdrawal row. Raises ``WithdrawalNotFound`` (404, also for another user's)
    and ``WithdrawalStateConflict`` (409) once an operator has acted on it.
    """
    withdrawal = _withdrawal_locked(withdrawal_id=withdrawal_id, user=user)
    if withdrawal.status != Withdrawal.Status.REQUESTED:
        raise _state_conflict(withdrawal, "cancelled")
    _withdrawal_release(withdrawal)
    withdrawal.status = Withdrawal.Status.CANCELLED
    withdrawal.save(update_fields=["status", "updated_at"])
    return withdrawal


@transaction.atomic
def withdrawal_approve(*, withdrawal_id: int, reviewer: User, note: str = "") -> Withdrawal:
    """An operator approves a requested withdrawal; processing starts after commit.

    Locks the withdrawal row. Raises ``WithdrawalStateConflict`` (409) unless requested and
    ``AccountFrozen`` (403) while its owner is frozen. Recorded in the operators' audit trail
    with ``note`` as the reason.
    """
    from wallets.tasks import withdrawal_process_task

    withdrawal = _withdrawal_locked(withdrawal_id=withdrawal_id)
    if withdrawal.status != Withdrawal.Status.REQUESTED:
        raise _state_conflict(withdrawal, "approved")
    if User.objects.filter(pk=withdrawal.user_id, frozen_at__isnull=False).exists():
        raise AccountFrozen("The owner of this withdrawal is frozen.")
    withdrawal.status = Withdrawal.Status.APPROVED
    withdrawal.reviewed_by = reviewer
    withdrawal.reviewed_at = timezone.now()
    withdrawal.review_note = note[:500]
    withdrawal.save(
        update_fields=["status", "reviewed_by", "reviewed_at", "review_note", "updated_at"]
    )
    operator_action_record(
        actor=reviewer, action="withdrawal_approve", target=withdrawal, reason=note
    )
    withdrawal_process_task.delay_on_commit(withdrawal.pk)
    return withdrawal


@transaction.atomic
def withdrawal_reject(*, withdrawal_id: int, reviewer: User, reason: str) -> Withdrawal:
    """An operator rejects a requested or approved withdrawal; the reserve is released.

    Locks the withdrawal row. A reason is required (``ValidationError``). Raises
    ``WithdrawalStateConflict`` (409) once processing has started. Recorded in the
    operators' audit trail.
    """
    if not reason or not reason.strip():
        raise ValidationError({"reason": ["Give the reason for the rejection."]})
    withdrawal = _withdrawal_locked(withdrawal_id=withdrawal_id)
    if withdrawal.status not in (Withdrawal.Status.REQUESTED, Withdrawal.Status.APPROVED):
        raise _state_conflict(withdrawal, "rejected")
    _withdrawal_release(withdrawal)
    withdrawal.status = Withdrawal.Status.REJECTED
    withdrawal.reviewed_by = reviewer
    withdrawal.reviewed_at = timezone.now()
    withdrawal.review_note = reason.strip()[:500]
    withdrawal.save(
        update_fields=["status", "reviewed_by", "reviewed_at", "review_note", "updated_at"]
    )
    operator_action_record(
        actor=reviewer, action="withdrawal_reject", target=withdrawal, reason=reason
    )
    return withdrawal


@transaction.atomic
def _withdrawal_broadcast(*, withdrawal_id: int) -> None:
    withdrawal = _withdrawal_locked(withdrawal_id=withdrawal_id)
    if withdrawal.status != Withdrawal.Status.APPROVED:
        return
    if User.objects.filter(pk=withdrawal.user_id, frozen_at__isnull=False).exists():
        return  # held while its owner is frozen; the periodic sweep sends it after an unfreeze
    # The simulated chain's transaction id; set once, so a retry never sends twice.
    withdrawal.tx_id = f"simtx-{uuid.uuid4().hex}"
    withdrawal.status = Withdrawal.Status.PROCESSING
    withdrawal.save(update_fields=["tx_id", "status", "updated_at"])


@transaction.atomic
def _withdrawal_complete(*, withdrawal_id: int) -> None:
    withdrawal = _withdrawal_locked(withdrawal_id=withdrawal_id)
    if withdrawal.status != Withdrawal.Status.PROCESSING:
        return
    reference = {"reference_type": "withdrawal", "reference_id": withdrawal.pk}
    changes = [
        BalanceChange(
            withdrawal.user_id,
            withdrawal.asset_id,
            LedgerKind.WITHDRAWAL,
            locked=-withdrawal.amount,
            **reference,
        )
    ]
    if withdrawal.fee:
        changes += [
            BalanceChange(
                withdrawal.user_id,
                withdrawal.asset_id,
                LedgerKind.WITHDRAWAL_FEE,
                locked=-withdrawal.fee,
                **reference,
            ),
            BalanceChange(
                fee_account_get().pk,
                withdrawal.asset_id,
                LedgerKind.WITHDRAWAL_FEE,
                available=withdrawal.fee,
                **reference,
            ),
        ]
    balance_changes_apply(changes=changes)
    withdrawal.status = Withdrawal.Status.COMPLETED
    withdrawal.completed_at = timezone.now()
    withdrawal.save(update_fields=["status", "completed_at", "updated_at"])


def withdrawal_process(*, withdrawal_id: int) -> Withdrawal:
    """Send an approved withdrawal on the simulated chain and complete it.

    Two transactions, as with a real chain: approved → processing (a tx id is assigned),
    then processing → completed, paying the amount out of locked and the fee to the fee
    account. Each step locks the row and acts only from its own starting status, so
    running this twice, or concurrently, never pays twice.
    """
    _withdrawal_broadcast(withdrawal_id=withdrawal_id)
    _withdrawal_complete(withdrawal_id=withdrawal_id)
    return Withdrawal.objects.get(pk=withdrawal_id)


def withdrawals_process_pending() -> int:
    """Process every approved or stuck processing withdrawal; returns how many completed."""
    pending = Withdrawal.objects.filter(
        status__in=[Withdrawal.Status.APPROVED, Withdrawal.Status.PROCESSING]
    ).values_list("pk", flat=True)
    completed = 0
    for withdrawal_id in list(pending):
        completed += (
            withdrawal_process(withdrawal_id=withdrawal_id).status == Withdrawal.Status.COMPLETED
        )
    return completed


# --- Operator adjustments -----------------------------------------------------------------


@transaction.atomic
def balance_adjust(
    *, user: User, asset: Asset, amount: Decimal, reason: str, operator: User
) -> BalanceAdjustment:
    """An operator credits (amount > 0) or debits (amount < 0) an available balance.

    The reason is required and kept on the adjustment, its ledger entry and the operators'
    audit trail. A debit larger than the available balance raises ``InsufficientBalance``.
    """
    if not reason or not reason.strip():
        raise ValidationError({"reason": ["Write down why the balance is adjusted."]})
    if not amount.is_finite() or amount == 0:
        raise ValidationError({"amount": ["A non-zero amount is required."]})
    amount_validate(asset=asset, amount=abs(amount))
    adjustment = BalanceAdjustment.objects.create(
        user=user, asset=asset, amount=amount, reason=reason.strip(), created_by=operator
    )
    balance_changes_apply(
        changes=[
            BalanceChange(
                user.pk,
                asset.pk,
                LedgerKind.ADJUSTMENT,
                "adjustment",
                adjustment.pk,
                available=amount,
                memo=reason.strip()[:500],
            )
        ]
    )
    operator_action_record(
        actor=operator,
        action="balance_adjust",
        target=adjustment,
        reason=reason,
        details={"user_id": user.pk, "asset": asset.code, "amount": decimal_to_str(amount)},
    )
    return adjustment


# --- Demo data --------------------------------------------------------------------------

DEMO_ASSETS = (
    # code, name, precision, min withdrawal, withdrawal fee, confirmations
    ("BTC", "Bitcoin", 8, "0.0001", "0.0001", 2),
    ("ETH", "Ether", 8, "0.001", "0.002", 6),
    ("SOL", "Solana", 6, "0.01", "0.01", 1),
    ("USD", "US Dollar", 2, "10.00", "1.00", 0),
)

DEMO_FUNDS = {"USD": "100000", "BTC": "5", "ETH": "50", "SOL": "1000"}


@transaction.atomic
def assets_seed() -> list[str]:
    """Create the demo assets when missing; existing ones (maybe edited) stay as they are."""
    lines = []
    for code, name, precision, min_withdrawal, fee, confirmations in DEMO_ASSETS:
        _, created = Asset.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "precision": precision,
                "min_withdrawal": Decimal(min_withdrawal),
                "withdrawal_fee": Decimal(fee),
                "confirmations_required": confirmations,
            },
        )
        lines.append(f"{'created' if created else 'exists '} asset {code}")
    return lines


@transaction.atomic
def demo_funds_seed(*, emails: Sequence[str]) -> list[str]:
    """Give each demo user starting funds once, as confirmed deposits (idempotent by tx id)."""
    lines = []
    for user in User.objects.filter(email__in=emails):
        for code, amount in DEMO_FUNDS.items():
            asset = Asset.objects.filter(code=code).first()
            tx_id = f"seed-{user.pk}-{code}"
            if asset is None or Deposit.objects.filter(tx_id=tx_id).exists():
                continue
            deposit = Deposit.objects.create(
                user=user,
                asset=asset,
                amount=Decimal(amount),
                status=Deposit.Status.CONFIRMED,
                tx_id=tx_id,
                confirmations=asset.confirmations_required,
                confirmations_required=asset.confirmations_required,
                confirmed_at=timezone.now(),
            )
            balance_credit(
                user_id=user.pk,
                asset=asset,
                amount=deposit.amount,
                kind=LedgerKind.DEPOSIT,
                reference_type="deposit",
                reference_id=deposit.pk,
                memo="demo starting funds",
            )
            lines.append(f"funded  {user.email} with {amount} {code}")
    return lines


def ledger_check_run() -> LedgerCheckRun:
    """Check the money invariants now and keep the outcome for the operators' dashboard."""
    started_at = timezone.now()
    report = ledger_check()
    return LedgerCheckRun.objects.create(
        started_at=started_at,
        finished_at=timezone.now(),
        ok=report.ok,
        summary={"assets": report.assets, "balances_checked": report.balances_checked},
        violations=report.violations[:1000],
    )
