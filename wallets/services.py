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
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core import signing
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
from wallets.address_book import (  # noqa: F401 (re-exported)
    address_validate,
    withdrawal_address_add,
    withdrawal_address_delete,
    withdrawal_allowlist_set,
    withdrawal_destination_resolve,
    withdrawal_tier_grant,
)
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
    withdrawal_outcome_notify,
    withdrawal_process,
    withdrawals_expire_unconfirmed,
    withdrawals_process_pending,
)
from wallets.exceptions import (
    AdjustmentStateConflict,
    AssetInactive,
    DemoDepositsDisabled,
    DepositLimitExceeded,
    DepositNotFound,
    DepositStateConflict,
    SelfApprovalRefused,
    WithdrawalLinkInvalid,
    WithdrawalStateConflict,
)
from wallets.ledger_check import ledger_check, ledger_check_run  # noqa: F401 (re-exported)
from wallets.limits import withdrawal_limit_check
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
from wallets.selectors import asset_get_by_code, balance_available
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
#
# requested by the owner ──▶ awaiting_confirmation ──(emailed link)──▶ requested ──▶ approved
#   (funds reserved)            │ expires / cancelled                    │ over the asset's
#                               ▼                                        ▼ threshold
#                      expired / cancelled (released)       awaiting_second_approval ──▶ approved
# approved ──▶ processing ──▶ completed; requested or awaiting a second approval ──▶ rejected.

CONFIRM_SALT = "wallets.withdrawal.confirm"
CANCEL_SALT = "wallets.withdrawal.cancel"
# The cancel link works as long as the withdrawal can still be cancelled from it.
CANCEL_LINK_SECONDS = 7 * 24 * 3600


def withdrawal_link_token(*, withdrawal: Withdrawal, salt: str) -> str:
    """The signed token of the emailed confirm (``CONFIRM_SALT``) or cancel link."""
    return signing.dumps({"w": withdrawal.pk, "u": withdrawal.user_id}, salt=salt)


def _withdrawal_from_token(token: str, *, salt: str, max_age: int) -> int:
    try:
        payload = signing.loads(token, salt=salt, max_age=max_age)
        return int(payload["w"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise WithdrawalLinkInvalid() from None


def withdrawal_second_approval_threshold(*, asset: Asset) -> Decimal:
    """Amounts of ``asset`` above this need a second operator (``"*"`` for unlisted)."""
    thresholds = settings.WITHDRAWAL_SECOND_APPROVAL_OVER
    return Decimal(str(thresholds.get(asset.code, thresholds.get("*", "0"))))


@transaction.atomic
def withdrawal_request(
    *,
    user: User,
    asset_code: str,
    amount: Decimal,
    address: str | None = None,
    address_id: int | None = None,
    otp_code: str | None = None,
    ip: str | None = None,
) -> Withdrawal:
    """Ask to send ``amount`` to ``address`` (or the saved address ``address_id``);
    reserves amount + the asset's fee at once, and emails the owner a link to confirm it
    (and one to cancel it). Operators see it only once confirmed; unconfirmed, it expires
    after ``WITHDRAWAL_CONFIRM_SECONDS`` and the reserve is released.

    Takes the account's withdrawal-limit advisory lock, then the two-factor device row, then
    the balance row. Raises ``AccountFrozen`` / ``EmailNotVerified`` (403),
    ``ValidationError`` (400) for a bad amount or address or one under the asset's minimum,
    the address book's refusals (``WithdrawalAddressNotAllowed``,
    ``WithdrawalAddressCoolingDown``: 422; ``WithdrawalAddressNotFound``: 404),
    ``WithdrawalUnpriced`` / ``WithdrawalLimitExceeded`` (422) past the 24-hour limit,
    ``InsufficientBalance`` (422) when available < amount + fee, and with two-factor
    authentication on ``OtpRequired`` / ``OtpInvalid`` (403) or ``LoginRateLimited`` (429)
    unless ``otp_code`` is a current code. A refusal reserves nothing and spends no code.
    """
    if user.is_frozen:
        raise AccountFrozen()
    if not user.is_verified:
        raise EmailNotVerified()
    asset = _active_asset(asset_code)
    amount = amount_validate(asset=asset, amount=amount)
    if address_id is None:
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
    address = withdrawal_destination_resolve(
        user=user, asset=asset, address=address, address_id=address_id
    )
    # Money the account does not have is the first thing to say; the reserve below stays
    # the conditional UPDATE that decides.
    available = balance_available(user_id=user.pk, asset_id=asset.pk)
    if available < amount + asset.withdrawal_fee:
        raise insufficient_balance(
            asset=asset, required=amount + asset.withdrawal_fee, available=available
        )
    limit_value = withdrawal_limit_check(user=user, asset=asset, amount=amount)
    two_factor_require(user=user, otp_code=otp_code, ip=ip)
    now = timezone.now()
    withdrawal = Withdrawal.objects.create(
        user=user,
        asset=asset,
        amount=amount,
        fee=asset.withdrawal_fee,
        address=address,
        limit_value=limit_value,
        needs_second_approval=amount > withdrawal_second_approval_threshold(asset=asset),
        expires_at=now + timedelta(seconds=settings.WITHDRAWAL_CONFIRM_SECONDS),
    )
    balance_reserve(
        user_id=user.pk,
        asset=asset,
        amount=withdrawal.total,
        kind=LedgerKind.WITHDRAWAL,
        reference_type="withdrawal",
        reference_id=withdrawal.pk,
    )
    _withdrawal_confirmation_send(user=user, withdrawal=withdrawal, ip=ip)
    return withdrawal


def _withdrawal_confirmation_send(*, user: User, withdrawal: Withdrawal, ip: str | None) -> None:
    # Every request is emailed, so a thief with the session cannot withdraw unnoticed, and
    # none leaves before its owner follows the link.
    precision = withdrawal.asset.precision
    confirm = withdrawal_link_token(withdrawal=withdrawal, salt=CONFIRM_SALT)
    cancel = withdrawal_link_token(withdrawal=withdrawal, salt=CANCEL_SALT)
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
            "when": f"{timezone.localtime(withdrawal.created_at):%Y-%m-%d %H:%M} UTC",
            "expires": f"{timezone.localtime(withdrawal.expires_at):%Y-%m-%d %H:%M} UTC",
            "confirm_minutes": settings.WITHDRAWAL_CONFIRM_SECONDS // 60,
            "ip": ip or "unknown",
            "confirm_url": site_url(reverse("withdrawal-confirm", args=[confirm])),
            "cancel_url": site_url(reverse("withdrawal-cancel-link", args=[cancel])),
            "withdrawals_url": site_url(reverse("wallet")),
        },
    )


def _state_conflict(withdrawal: Withdrawal, action: str) -> WithdrawalStateConflict:
    return WithdrawalStateConflict(
        f"A withdrawal {withdrawal.get_status_display()} cannot be {action}.",
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


def withdrawal_link_peek(*, token: str, salt: str) -> Withdrawal:
    """The withdrawal an emailed link names (for the page that asks before acting).
    Raises ``WithdrawalLinkInvalid`` (400) for a bad or expired link."""
    max_age = settings.WITHDRAWAL_CONFIRM_SECONDS if salt == CONFIRM_SALT else CANCEL_LINK_SECONDS
    withdrawal_id = _withdrawal_from_token(token, salt=salt, max_age=max_age)
    withdrawal = Withdrawal.objects.select_related("asset", "user").filter(pk=withdrawal_id).first()
    if withdrawal is None:
        raise WithdrawalLinkInvalid()
    return withdrawal


@transaction.atomic
def withdrawal_confirm(*, token: str) -> Withdrawal:
    """The owner followed the emailed link: the withdrawal goes to the operators' queue.

    Locks the withdrawal row. Raises ``WithdrawalLinkInvalid`` (400) for a bad or expired
    link and ``WithdrawalStateConflict`` (409) unless it still awaits confirmation (an
    expired request cannot be brought back). Confirming twice is answered with the same
    withdrawal, changed once.
    """
    withdrawal_id = _withdrawal_from_token(
        token, salt=CONFIRM_SALT, max_age=settings.WITHDRAWAL_CONFIRM_SECONDS
    )
    withdrawal = withdrawal_lock(withdrawal_id=withdrawal_id)
    if withdrawal.status != Withdrawal.Status.AWAITING_CONFIRMATION:
        if withdrawal.confirmed_at is not None:
            return withdrawal
        raise _state_conflict(withdrawal, "confirmed")
    if withdrawal.expires_at is not None and withdrawal.expires_at <= timezone.now():
        raise _state_conflict(withdrawal, "confirmed after its link expired")
    withdrawal.status = Withdrawal.Status.REQUESTED
    withdrawal.confirmed_at = timezone.now()
    withdrawal.save(update_fields=["status", "confirmed_at", "updated_at"])
    return withdrawal


def _withdrawal_cancel_locked(withdrawal: Withdrawal) -> Withdrawal:
    if withdrawal.status not in Withdrawal.CANCELLABLE:
        raise _state_conflict(withdrawal, "cancelled")
    _withdrawal_release(withdrawal)
    withdrawal.status = Withdrawal.Status.CANCELLED
    withdrawal.save(update_fields=["status", "updated_at"])
    return withdrawal


@transaction.atomic
def withdrawal_cancel(*, user: User, withdrawal_id: int) -> Withdrawal:
    """The owner cancels a withdrawal no operator has approved yet (awaiting confirmation,
    requested, or approved once of two); its reserve is released.

    Locks the withdrawal row. Raises ``WithdrawalNotFound`` (404, also for another user's)
    and ``WithdrawalStateConflict`` (409) once it is approved.
    """
    return _withdrawal_cancel_locked(withdrawal_lock(withdrawal_id=withdrawal_id, user=user))


@transaction.atomic
def withdrawal_cancel_by_link(*, token: str) -> Withdrawal:
    """``withdrawal_cancel`` from the emailed cancel link, which needs no login (the owner
    may be locked out by whoever asked). Raises ``WithdrawalLinkInvalid`` (400) and
    ``WithdrawalStateConflict`` (409)."""
    withdrawal_id = _withdrawal_from_token(token, salt=CANCEL_SALT, max_age=CANCEL_LINK_SECONDS)
    return _withdrawal_cancel_locked(withdrawal_lock(withdrawal_id=withdrawal_id))


def _review_refuse_own(withdrawal: Withdrawal, reviewer: User) -> None:
    if withdrawal.user_id == reviewer.pk:
        raise SelfApprovalRefused("No operator may approve their own withdrawal.")


@transaction.atomic
def withdrawal_approve(*, withdrawal_id: int, reviewer: User, note: str = "") -> Withdrawal:
    """An operator approves a confirmed withdrawal. Over the asset's four-eyes threshold the
    first approval only moves it to ``awaiting_second_approval``; the second, by another
    operator, approves it. Processing starts after commit of the final approval.

    Locks the withdrawal row. Raises ``WithdrawalStateConflict`` (409) unless it awaits an
    approval, ``SelfApprovalRefused`` (403) for the owner or the first approver approving
    again, and ``AccountFrozen`` (403) while its owner is frozen. Each step is recorded in
    the operators' audit trail with ``note`` as the reason.
    """
    withdrawal = withdrawal_lock(withdrawal_id=withdrawal_id)
    if withdrawal.status not in Withdrawal.IN_REVIEW:
        raise _state_conflict(withdrawal, "approved")
    _review_refuse_own(withdrawal, reviewer)
    if User.objects.filter(pk=withdrawal.user_id, frozen_at__isnull=False).exists():
        raise AccountFrozen("The owner of this withdrawal is frozen.")
    now = timezone.now()
    if withdrawal.status == Withdrawal.Status.REQUESTED and withdrawal.needs_second_approval:
        withdrawal.status = Withdrawal.Status.AWAITING_SECOND_APPROVAL
        withdrawal.first_approved_by = reviewer
        withdrawal.first_approved_at = now
        withdrawal.first_approval_note = note[:500]
        withdrawal.save(
            update_fields=[
                "status",
                "first_approved_by",
                "first_approved_at",
                "first_approval_note",
                "updated_at",
            ]
        )
        operator_action_record(
            actor=reviewer,
            action="withdrawal_approve_first",
            target=withdrawal,
            reason=note,
            details=_withdrawal_details(withdrawal),
        )
        return withdrawal
    if withdrawal.first_approved_by_id == reviewer.pk:
        raise SelfApprovalRefused(
            "You gave this withdrawal its first approval: another operator gives the second."
        )
    withdrawal.status = Withdrawal.Status.APPROVED
    withdrawal.reviewed_by = reviewer
    withdrawal.reviewed_at = now
    withdrawal.review_note = note[:500]
    withdrawal.save(
        update_fields=["status", "reviewed_by", "reviewed_at", "review_note", "updated_at"]
    )
    operator_action_record(
        actor=reviewer,
        action="withdrawal_approve",
        target=withdrawal,
        reason=note,
        details=_withdrawal_details(withdrawal),
    )
    withdrawal_process_task.delay_on_commit(withdrawal.pk)
    return withdrawal


def _withdrawal_details(withdrawal: Withdrawal) -> dict:
    return {
        "asset": withdrawal.asset.code,
        "amount": decimal_to_str(withdrawal.amount),
        "address": withdrawal.address,
        "first_approved_by": withdrawal.first_approved_by_id,
    }


@transaction.atomic
def withdrawal_reject(*, withdrawal_id: int, reviewer: User, reason: str) -> Withdrawal:
    """An operator rejects a withdrawal not yet sent (any one operator may stop money
    leaving, the first approver included); the reserve is released.

    Locks the withdrawal row. A reason is required (``ValidationError``). Raises
    ``WithdrawalStateConflict`` (409) once processing has started. Recorded in the
    operators' audit trail.
    """
    if not reason or not reason.strip():
        raise ValidationError({"reason": ["Give the reason for the rejection."]})
    withdrawal = withdrawal_lock(withdrawal_id=withdrawal_id)
    if withdrawal.status not in (*Withdrawal.IN_REVIEW, Withdrawal.Status.APPROVED):
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
    withdrawal_outcome_notify(
        withdrawal=withdrawal, outcome="was rejected", reason=reason.strip(), released=True
    )
    return withdrawal


# --- Operator adjustments -----------------------------------------------------------------


def _adjustment_validate(*, asset: Asset, amount: Decimal) -> None:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount == 0:
        raise ValidationError({"amount": ["A non-zero amount is required."]})
    amount_validate(asset=asset, amount=abs(amount))


@transaction.atomic
def balance_adjust(
    *, user: User, asset: Asset, amount: Decimal, reason: str, operator: User
) -> BalanceAdjustment:
    """An operator asks to credit (amount > 0) or debit (amount < 0) an available balance.
    Nothing changes until a second operator approves it (``balance_adjustment_approve``).

    The reason is required and kept on the adjustment and in the audit trail
    (``ValidationError`` without one or for a bad amount).
    """
    reason = reason_require(reason)
    _adjustment_validate(asset=asset, amount=amount)
    adjustment = BalanceAdjustment.objects.create(
        user=user, asset=asset, amount=amount, reason=reason, created_by=operator
    )
    operator_action_record(
        actor=operator,
        action="balance_adjust_request",
        target=adjustment,
        reason=reason,
        details={"user_id": user.pk, "asset": asset.code, "amount": decimal_to_str(amount)},
    )
    return adjustment


def _adjustment_lock(adjustment_id: int) -> BalanceAdjustment:
    adjustment = (
        BalanceAdjustment.objects.select_for_update(of=("self",))
        .select_related("asset")
        .filter(pk=adjustment_id)
        .first()
    )
    if adjustment is None:
        raise AdjustmentStateConflict("No such adjustment.", details={"id": adjustment_id})
    if adjustment.status != BalanceAdjustment.Status.PENDING:
        raise AdjustmentStateConflict(details={"status": adjustment.status})
    return adjustment


@transaction.atomic
def balance_adjustment_approve(
    *, adjustment_id: int, reviewer: User, note: str = ""
) -> BalanceAdjustment:
    """A second operator approves a pending adjustment: its ledger entry is posted and the
    balance changes. Locks the adjustment row, then the balance row. Raises
    ``SelfApprovalRefused`` (403) for the operator who asked, ``AdjustmentStateConflict``
    (409) unless pending, and ``InsufficientBalance`` (422) when a debit is larger than
    the available balance now. Recorded in the audit trail."""
    adjustment = _adjustment_lock(adjustment_id)
    if adjustment.created_by_id == reviewer.pk or adjustment.user_id == reviewer.pk:
        raise SelfApprovalRefused(
            "An adjustment is approved by an operator other than the one who asked for it "
            "and its account holder."
        )
    balance_changes_apply(
        changes=[
            BalanceChange(
                adjustment.user_id,
                adjustment.asset_id,
                LedgerKind.ADJUSTMENT,
                "adjustment",
                adjustment.pk,
                available=adjustment.amount,
                memo=adjustment.reason[:500],
            )
        ]
    )
    adjustment.status = BalanceAdjustment.Status.APPLIED
    adjustment.reviewed_by = reviewer
    adjustment.reviewed_at = timezone.now()
    adjustment.review_note = note.strip()[:500]
    adjustment.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_note"])
    operator_action_record(
        actor=reviewer,
        action="balance_adjust_approve",
        target=adjustment,
        reason=note,
        details={
            "user_id": adjustment.user_id,
            "asset": adjustment.asset.code,
            "amount": decimal_to_str(adjustment.amount),
            "requested_by": adjustment.created_by_id,
        },
    )
    return adjustment


@transaction.atomic
def balance_adjustment_reject(
    *, adjustment_id: int, reviewer: User, reason: str
) -> BalanceAdjustment:
    """An operator (the one who asked included: a withdrawn request) rejects a pending
    adjustment; nothing changes. A reason is required. Raises ``AdjustmentStateConflict``
    (409) unless pending. Recorded in the audit trail."""
    reason = reason_require(reason)
    adjustment = _adjustment_lock(adjustment_id)
    adjustment.status = BalanceAdjustment.Status.REJECTED
    adjustment.reviewed_by = reviewer
    adjustment.reviewed_at = timezone.now()
    adjustment.review_note = reason[:500]
    adjustment.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_note"])
    operator_action_record(
        actor=reviewer, action="balance_adjust_reject", target=adjustment, reason=reason
    )
    return adjustment


# --- Demo data --------------------------------------------------------------------------

DEMO_ASSETS = (
    # code, name, precision, min withdrawal, withdrawal fee, confirmations, reference price
    # (what the withdrawal limits count a unit at until its market has traded)
    ("BTC", "Bitcoin", 8, "0.0001", "0.0001", 2, "60000"),
    ("ETH", "Ether", 8, "0.001", "0.002", 6, "3000"),
    ("SOL", "Solana", 6, "0.01", "0.01", 1, "150"),
    ("USD", "US Dollar", 2, "10.00", "1.00", 0, None),
)

DEMO_FUNDS = {"USD": "100000", "BTC": "5", "ETH": "50", "SOL": "1000"}


@transaction.atomic
def assets_seed() -> list[str]:
    """Create the demo assets when missing; existing ones (maybe edited) stay as they are."""
    lines = []
    for code, name, precision, min_withdrawal, fee, confirmations, price in DEMO_ASSETS:
        _, created = Asset.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "precision": precision,
                "min_withdrawal": Decimal(min_withdrawal),
                "withdrawal_fee": Decimal(fee),
                "confirmations_required": confirmations,
                "reference_price": Decimal(price) if price else None,
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
