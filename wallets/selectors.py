"""Reads of wallets data that are more than a one-line query."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db.models import QuerySet

from accounts.models import User
from wallets.exceptions import AssetNotFound
from wallets.models import ZERO, Asset, Balance, Deposit, LedgerEntry, Withdrawal


def asset_get_by_code(*, code: str) -> Asset:
    """The asset with this code (case-insensitive). Raises ``AssetNotFound`` (404)."""
    asset = Asset.objects.filter(code=str(code).strip().upper()).first()
    if asset is None:
        raise AssetNotFound(details={"asset": code})
    return asset


def fee_account_get() -> User:
    """The system account that collects fees (made by a migration; remade if missing)."""
    user, _ = User.objects.get_or_create(
        email=settings.FEE_ACCOUNT_EMAIL,
        defaults={
            "username": "exchange-fees",
            "full_name": "Exchange fee account",
            "is_system": True,
            "is_active": False,
            "password": make_password(None),
        },
    )
    return user


def balance_available(*, user_id: int, asset_id: int) -> Decimal:
    value = (
        Balance.objects.filter(user_id=user_id, asset_id=asset_id)
        .values_list("available", flat=True)
        .first()
    )
    return value if value is not None else ZERO


@dataclass(frozen=True)
class AssetBalance:
    asset: Asset
    available: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.available + self.locked


def balance_list_for_user(*, user: User) -> list[AssetBalance]:
    """Every active asset with the user's balance in it (zero where the user has none)."""
    held = {row.asset_id: row for row in Balance.objects.filter(user=user)}
    result = []
    for asset in Asset.objects.filter(is_active=True).order_by("code"):
        row = held.get(asset.pk)
        result.append(
            AssetBalance(
                asset=asset,
                available=row.available if row else ZERO,
                locked=row.locked if row else ZERO,
            )
        )
    return result


def ledger_list_for_user(*, user: User) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(user=user).select_related("asset").order_by("-id")


def deposit_list_for_user(*, user: User) -> QuerySet[Deposit]:
    return Deposit.objects.filter(user=user).select_related("asset").order_by("-id")


def withdrawal_list_for_user(*, user: User) -> QuerySet[Withdrawal]:
    return Withdrawal.objects.filter(user=user).select_related("asset").order_by("-id")
