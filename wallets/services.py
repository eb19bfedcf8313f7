"""Everything that changes money. Balances change here and only here (ARCHITECTURE §4).

This module is the public face of the wallets' writes: the balance primitives
(``wallets.balances``) and the simulated chain's steps (``wallets.chain``) are re-exported
from here, and every other app calls them through it. Every balance change is a conditional
UPDATE (or an UPDATE of rows locked in ``(user_id, asset_id)`` order) paired with a
LedgerEntry written in the same transaction, so the ledger always explains the balance and
concurrent callers can never overdraw.
"""

import secrets
import uuid
from collections.abc import Sequence
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from accounts.audit import operator_action_record, reason_require
from accounts.exceptions import AccountFrozen, EmailNotVerified
from accounts.models import User
from accounts.twofactor import two_factor_require
from exchange_site.decimals import decimal_to_str
from exchange_site.mail import email_send_on_commit, site_url
from wallets.balances import (  # noqa: F401 (re-exported: the primitives' public home)
    AMOUNT_CONTEXT,
    LEDGER_COLUMNS,
    BalanceChange,
    amount_too_large,
    balance_changes_apply,
    balance_credit,
    balance_release,
    balance_reserve,
    balances_lock,
    ensure_balance_rows,
    insufficient_balance,
    ledger_row,
)
from wallets.chain import (  # noqa: F401 (re-exported)
    chain_block_mine,
    deposit_confirm,
    withdrawal_lock,
    withdrawal_process,
    withdrawals_process_pending,
)
from wallets.exceptions import (
    AssetInactive,
    DemoDepositsDisabled,
    DepositLimitExceeded,
    DepositNotFound,
    DepositStateConflict,
    WithdrawalStateConflict,
)
from wallets.ledger_check import ledger_check, ledger_check_run  # noqa: F401 (re-exported)
from wallets.models import (
    AMOUNT_QUANTUM,
    ZERO,
    Asset,
    Balance,
    BalanceAdjustment,
    Deposit,
    DepositAddress,
    LedgerKind,
    Withdrawal,
)
from wallets.selectors import asset_get_by_code
from wallets.tasks import withdrawal_process_task

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
    if amount_too_large(amount):
        raise ValidationError({field: ["Too large."]})
    if amount != amount.quantize(asset.quantum, context=AMOUNT_CONTEXT):
        raise ValidationError(
            {field: [f"{asset.code} allows at most {asset.precision} decimal places."]}
        )
    return amount.quantize(AMOUNT_QUANTUM, context=AMOUNT_CONTEXT)


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
    ensure_balance_rows([(user.pk, asset.pk)])
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

    Emails the owner about it (after commit). Raises ``AccountFrozen`` (403),
    ``EmailNotVerified`` (403) until the address is confirmed, ``ValidationError`` (400) for a
    bad amount or address or one under the asset's minimum, ``InsufficientBalance`` (422)
    when available < amount + fee, and with two-factor authentication on ``OtpRequired`` /
    ``OtpInvalid`` (403) or ``LoginRateLimited`` (429) unless ``otp_code`` is a current code
    (the check locks the user's two-factor device row, before the balance row; ``ip`` is the
    client's, for the
    lockout). A code is spent only when the withdrawal is made: a refusal rolls it back.
    """
    if user.is_frozen:
        raise AccountFrozen()
    if not user.is_verified:
        raise EmailNotVerified()
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
    if amount_too_large(amount + asset.withdrawal_fee):
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
    _withdrawal_requested_notify(user=user, withdrawal=withdrawal)
    return withdrawal


def _withdrawal_requested_notify(*, user: User, withdrawal: Withdrawal) -> None:
    # Every request, so a thief with the session cannot withdraw unnoticed.
    precision = withdrawal.asset.precision
    email_send_on_commit(
        to=user.email,
        template="withdrawal_requested",
        context={
            "username": user.username,
            "asset": withdrawal.asset.code,
            "amount": decimal_to_str(withdrawal.amount, precision),
            "fee": decimal_to_str(withdrawal.fee, precision),
            "address": withdrawal.address,
            "withdrawal_id": withdrawal.pk,
            "when": f"{withdrawal.created_at:%Y-%m-%d %H:%M} UTC",
            "withdrawals_url": site_url(reverse("wallet")),
        },
    )


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
    withdrawal = withdrawal_lock(withdrawal_id=withdrawal_id, user=user)
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
    withdrawal = withdrawal_lock(withdrawal_id=withdrawal_id)
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
    withdrawal = withdrawal_lock(withdrawal_id=withdrawal_id)
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
