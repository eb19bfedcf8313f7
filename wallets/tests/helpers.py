"""Assertions shared by the wallets tests."""

from dataclasses import dataclass
from decimal import Decimal

from testsupport.helpers import assert_error, assert_ledger_ok  # noqa: F401 (re-exported)
from wallets.models import Balance, BalanceAdjustment, Deposit, LedgerEntry, Withdrawal


@dataclass(frozen=True)
class MoneyState:
    """Everything a refused request must leave untouched."""

    balances: tuple[tuple[int, int, Decimal, Decimal], ...]
    ledger_entries: int
    deposits: int
    withdrawals: int
    adjustments: int


def money_state() -> MoneyState:
    return MoneyState(
        balances=tuple(
            Balance.objects.order_by("user_id", "asset_id").values_list(
                "user_id", "asset_id", "available", "locked"
            )
        ),
        ledger_entries=LedgerEntry.objects.count(),
        deposits=Deposit.objects.count(),
        withdrawals=Withdrawal.objects.count(),
        adjustments=BalanceAdjustment.objects.count(),
    )


def balance_of(user, asset) -> tuple[Decimal, Decimal]:
    """(available, locked) of one account; (0, 0) when it never held the asset."""
    row = Balance.objects.filter(user=user, asset=asset).values_list("available", "locked").first()
    return row if row is not None else (Decimal(0), Decimal(0))


def withdrawal_confirm_by_email(withdrawal):
    """What the owner's click on the emailed link does: the withdrawal goes to review."""
    from wallets import services

    token = services.withdrawal_link_token(withdrawal=withdrawal, salt=services.CONFIRM_SALT)
    return services.withdrawal_confirm(token=token)


def withdrawal_request_confirmed(**kwargs):
    """``services.withdrawal_request`` and its owner's click on the emailed link: a
    withdrawal awaiting the operators' review (status ``requested``)."""
    from wallets import services

    return withdrawal_confirm_by_email(services.withdrawal_request(**kwargs))
