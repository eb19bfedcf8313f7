"""Reads behind Binance's wallet endpoints (``/sapi/v1``): assets with a user's balances, and
a user's deposits and withdrawals in a time window."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import F, Sum

from accounts.models import User
from wallets.models import ZERO, Asset, Balance, Deposit, Withdrawal
from wallets.selectors import deposit_list_for_user, withdrawal_list_for_user


@dataclass(frozen=True)
class CoinBalance:
    """An asset with what the user holds of it: ``withdrawing`` is the part of ``locked``
    reserved by withdrawals not yet completed (amount + fee)."""

    asset: Asset
    free: Decimal
    locked: Decimal
    withdrawing: Decimal


def asset_list(*, code: str | None = None) -> list[Asset]:
    """Every asset (inactive ones too: Binance lists coins whose deposits are closed), or the
    one with ``code`` (an empty list when there is none)."""
    assets = Asset.objects.order_by("code")
    if code is not None:
        assets = assets.filter(code=code.strip().upper())
    return list(assets)


def coin_balance_list_for_user(*, user: User) -> list[CoinBalance]:
    """Every asset with the user's balance in it (zero where the user has none)."""
    held = {row.asset_id: row for row in Balance.objects.filter(user=user)}
    withdrawing = dict(
        Withdrawal.objects.filter(user=user, status__in=Withdrawal.RESERVING)
        .values("asset_id")
        .annotate(total=Sum(F("amount") + F("fee")))
        .values_list("asset_id", "total")
    )
    result = []
    for asset in asset_list():
        row = held.get(asset.pk)
        result.append(
            CoinBalance(
                asset=asset,
                free=row.available if row else ZERO,
                locked=row.locked if row else ZERO,
                withdrawing=withdrawing.get(asset.pk) or ZERO,
            )
        )
    return result


def deposit_list_for_user_range(
    *,
    user: User,
    start: datetime,
    end: datetime,
    code: str | None = None,
    statuses: tuple[str, ...] | None = None,
    tx_id: str | None = None,
    offset: int = 0,
    limit: int = 1000,
) -> list[Deposit]:
    """The user's deposits made in ``[start, end]``, newest first."""
    deposits = deposit_list_for_user(user=user).filter(created_at__gte=start, created_at__lte=end)
    if code is not None:
        deposits = deposits.filter(asset__code=code.strip().upper())
    if statuses is not None:
        deposits = deposits.filter(status__in=statuses)
    if tx_id is not None:
        deposits = deposits.filter(tx_id=tx_id)
    return list(deposits[offset : offset + limit])


def withdrawal_list_for_user_range(
    *,
    user: User,
    start: datetime,
    end: datetime,
    code: str | None = None,
    statuses: tuple[str, ...] | None = None,
    ids: list[int] | None = None,
    offset: int = 0,
    limit: int = 1000,
) -> list[Withdrawal]:
    """The user's withdrawals requested in ``[start, end]``, newest first."""
    withdrawals = withdrawal_list_for_user(user=user).filter(
        created_at__gte=start, created_at__lte=end
    )
    if code is not None:
        withdrawals = withdrawals.filter(asset__code=code.strip().upper())
    if statuses is not None:
        withdrawals = withdrawals.filter(status__in=statuses)
    if ids is not None:
        withdrawals = withdrawals.filter(pk__in=ids)
    return list(withdrawals[offset : offset + limit])


# The currencies CCXT (and Binance) call "legal money": for them CCXT asks the fiat history
# (``fiat/orders``) instead of the coin histories. Those listed here are answered there.
LEGAL_MONEY = frozenset(
    {
        "AED",
        "ARS",
        "AUD",
        "BRL",
        "CAD",
        "CHF",
        "CZK",
        "DKK",
        "EUR",
        "GBP",
        "GHS",
        "HKD",
        "HUF",
        "INR",
        "JPY",
        "KES",
        "KZT",
        "MXN",
        "NGN",
        "NOK",
        "NZD",
        "PEN",
        "PHP",
        "PLN",
        "RUB",
        "SEK",
        "TRY",
        "UAH",
        "UGX",
        "USD",
        "VND",
        "ZAR",
    }
)


def fiat_history_for_user(
    *, user: User, withdrawals: bool, start: datetime, end: datetime, offset: int, limit: int
) -> tuple[list, int]:
    """The user's deposits (or withdrawals) of legal-money assets made in ``[start, end]``,
    newest first, one page of them, and how many there are in all."""
    rows = (withdrawal_list_for_user if withdrawals else deposit_list_for_user)(user=user).filter(
        created_at__gte=start, created_at__lte=end, asset__code__in=LEGAL_MONEY
    )
    return list(rows[offset : offset + limit]), rows.count()
