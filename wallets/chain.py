"""The simulated chain: blocks confirm deposits, approved withdrawals are broadcast and then
complete. This is what the worker's tasks run (``wallets.tasks``), apart from the services
that start them, so that the services can start tasks without an import cycle.
"""

import uuid

from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from exchange_site.decimals import decimal_to_str
from exchange_site.mail import email_send_on_commit, site_url
from wallets.balances import BalanceChange, balance_changes_apply, balance_credit, balance_release
from wallets.exceptions import WithdrawalNotFound
from wallets.models import Deposit, LedgerKind, Withdrawal
from wallets.selectors import fee_account_get


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


def withdrawal_outcome_notify(
    *, withdrawal: Withdrawal, outcome: str, reason: str = "", released: bool = False
) -> None:
    """Email the owner how a withdrawal ended (sent, rejected, expired), after commit."""
    user = User.objects.only("email", "username").get(pk=withdrawal.user_id)
    precision = withdrawal.asset.precision
    email_send_on_commit(
        to=user.email,
        template="withdrawal_status",
        context={
            "username": user.username,
            "withdrawal_id": withdrawal.pk,
            "asset": withdrawal.asset.code,
            "amount": decimal_to_str(withdrawal.amount, precision),
            "address": withdrawal.address,
            "outcome": outcome,
            "tx_id": withdrawal.tx_id,
            "reason": reason,
            "released": released,
            "withdrawals_url": site_url(reverse("wallet")),
        },
    )


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


def withdrawal_lock(*, withdrawal_id: int, user: User | None = None) -> Withdrawal:
    """The withdrawal (of ``user`` when given), its row locked: every step of a withdrawal
    starts here and acts only from its own starting status. Raises ``WithdrawalNotFound``."""
    withdrawals = Withdrawal.objects.select_for_update(of=("self",)).select_related("asset")
    if user is not None:
        withdrawals = withdrawals.filter(user=user)
    withdrawal = withdrawals.filter(pk=withdrawal_id).first()
    if withdrawal is None:
        raise WithdrawalNotFound()
    return withdrawal


@transaction.atomic
def _withdrawal_broadcast(*, withdrawal_id: int) -> None:
    withdrawal = withdrawal_lock(withdrawal_id=withdrawal_id)
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
    withdrawal = withdrawal_lock(withdrawal_id=withdrawal_id)
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
    withdrawal_outcome_notify(withdrawal=withdrawal, outcome="was sent")


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


def withdrawals_expire_unconfirmed(*, now=None) -> int:
    """Expire every request not confirmed in time and release its reserve (Celery beat,
    every minute). Each in its own transaction, locking its row and acting only on a
    request still unconfirmed, so a confirmation racing the sweep wins or loses whole.
    Returns how many expired."""
    now = now or timezone.now()
    due = Withdrawal.objects.filter(
        status=Withdrawal.Status.AWAITING_CONFIRMATION, expires_at__lte=now
    ).values_list("pk", flat=True)
    expired = 0
    for withdrawal_id in list(due):
        with transaction.atomic():
            withdrawal = withdrawal_lock(withdrawal_id=withdrawal_id)
            if withdrawal.status != Withdrawal.Status.AWAITING_CONFIRMATION:
                continue
            balance_release(
                user_id=withdrawal.user_id,
                asset=withdrawal.asset,
                amount=withdrawal.total,
                kind=LedgerKind.WITHDRAWAL,
                reference_type="withdrawal",
                reference_id=withdrawal.pk,
            )
            withdrawal.status = Withdrawal.Status.EXPIRED
            withdrawal.save(update_fields=["status", "updated_at"])
            withdrawal_outcome_notify(
                withdrawal=withdrawal, outcome="expired unconfirmed", released=True
            )
            expired += 1
    return expired
