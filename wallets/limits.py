"""Withdrawal limits: each account's tier, what an amount is worth in the reference asset, and
the rolling 24-hour budget every withdrawal request is checked against (ARCHITECTURE §4).

The rule for prices, in order: the asset is the reference asset (worth 1); the last trade of
a market of the asset against the reference asset (``BTC-USD``), or of the reverse market
(``USD-XYZ``: 1 / price); the last trade against another asset that itself has a direct
price (``SOL-BTC`` × ``BTC-USD``); the operator-set ``Asset.reference_price``. An asset none
of these prices cannot be withdrawn (``WithdrawalUnpriced``): an unpriced amount would
otherwise pass any limit.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from exchange_site.decimals import decimal_to_str
from wallets.balances import AMOUNT_CONTEXT
from wallets.exceptions import WithdrawalLimitExceeded, WithdrawalUnpriced
from wallets.models import (
    AMOUNT_QUANTUM,
    ZERO,
    Asset,
    Withdrawal,
    WithdrawalProfile,
    WithdrawalTier,
)

LIMIT_WINDOW = timedelta(hours=24)
# pg_advisory_xact_lock(key1, key2): key1 names the lock family, key2 is the user id.
LIMIT_LOCK_FAMILY = 0x5744  # "WD"

# The tier every verified account falls back on; the migration makes it, this remakes it
# (with the same terms) should an operator have deleted every default.
DEFAULT_TIER = {"code": "verified", "name": "Verified", "daily_limit": Decimal("10000")}


def reference_to_str(value: Decimal) -> str:
    """A worth in the reference asset as people read it: cents, rounded down."""
    return decimal_to_str(value.quantize(Decimal("0.01"), rounding=ROUND_DOWN), 2)


def withdrawal_tier_default() -> WithdrawalTier:
    """The default tier (``is_default``), made if missing."""
    tier = WithdrawalTier.objects.filter(is_default=True).first()
    if tier is None:
        tier, _ = WithdrawalTier.objects.get_or_create(
            code=DEFAULT_TIER["code"],
            defaults={**DEFAULT_TIER, "is_default": True, "description": "Email confirmed."},
        )
    return tier


def withdrawal_tier_for_user(*, user: User) -> WithdrawalTier | None:
    """The account's tier: the one an operator granted, else the default. None while the
    email address is unconfirmed: such an account may not withdraw at all."""
    if not user.is_verified:
        return None
    profile = (
        WithdrawalProfile.objects.filter(user_id=user.pk, tier__isnull=False)
        .select_related("tier")
        .first()
    )
    granted = profile.tier if profile else None
    return granted or withdrawal_tier_default()


def _last_prices() -> dict[tuple[str, str], Decimal]:
    # wallets sits below trading in the import graph, so the markets are read by name.
    market_model = apps.get_model("trading", "Market")
    return {
        (base, quote): price
        for base, quote, price in market_model.objects.filter(
            last_price__isnull=False, last_price__gt=0
        ).values_list("base_asset__code", "quote_asset__code", "last_price")
    }


def asset_reference_price(*, asset: Asset) -> Decimal | None:
    """What one unit of ``asset`` is worth in the reference asset, by the module's rule;
    None when nothing prices it."""
    reference = settings.WITHDRAWAL_LIMIT_ASSET
    if asset.code == reference:
        return Decimal(1)
    prices = _last_prices()
    direct = prices.get((asset.code, reference))
    if direct is not None:
        return direct
    reverse = prices.get((reference, asset.code))
    if reverse is not None:
        return Decimal(1) / reverse
    for (base, quote), price in sorted(prices.items()):
        if base == asset.code and (quote, reference) in prices:
            return price * prices[(quote, reference)]
    return asset.reference_price


def withdrawal_limit_value(*, asset: Asset, amount: Decimal) -> Decimal:
    """``amount`` of ``asset`` in the reference asset, rounded up at the ledger's 18 places.
    Raises ``WithdrawalUnpriced`` (422) when nothing prices the asset."""
    price = asset_reference_price(asset=asset)
    if price is None:
        raise WithdrawalUnpriced(
            f"{asset.code} has no market price yet, so it cannot be counted against your "
            "withdrawal limit. Try again after it trades, or contact support.",
            details={"asset": asset.code},
        )
    return (amount * price).quantize(AMOUNT_QUANTUM, rounding=ROUND_CEILING, context=AMOUNT_CONTEXT)


def withdrawal_limit_used(*, user_id: int, now=None) -> Decimal:
    """What the account's withdrawals of the last 24 hours count against its limit: every
    one not cancelled, rejected or expired, at its worth when requested."""
    since = (now or timezone.now()) - LIMIT_WINDOW
    used = Withdrawal.objects.filter(
        user_id=user_id, created_at__gt=since, status__in=Withdrawal.COUNTING
    ).aggregate(total=Sum("limit_value"))["total"]
    return used or ZERO


@dataclass(frozen=True)
class WithdrawalLimit:
    tier: WithdrawalTier | None
    reference_asset: str
    daily_limit: Decimal
    used: Decimal

    @property
    def remaining(self) -> Decimal:
        return max(self.daily_limit - self.used, ZERO)


def withdrawal_limit_get(*, user: User) -> WithdrawalLimit:
    """The account's tier, 24-hour limit, what it used and what is left."""
    tier = withdrawal_tier_for_user(user=user)
    return WithdrawalLimit(
        tier=tier,
        reference_asset=settings.WITHDRAWAL_LIMIT_ASSET,
        daily_limit=tier.daily_limit if tier else ZERO,
        used=withdrawal_limit_used(user_id=user.pk),
    )


def withdrawal_limit_summary(*, user: User) -> dict:
    """``withdrawal_limit_get`` as the API and the wallet page show it (amounts as text)."""
    limit = withdrawal_limit_get(user=user)
    return {
        "tier": limit.tier.code if limit.tier else None,
        "tier_name": limit.tier.name if limit.tier else None,
        "reference_asset": limit.reference_asset,
        "window_hours": int(LIMIT_WINDOW.total_seconds() // 3600),
        "daily_limit": reference_to_str(limit.daily_limit),
        "used": reference_to_str(limit.used),
        "remaining": reference_to_str(limit.remaining),
    }


def withdrawal_limit_check(*, user: User, asset: Asset, amount: Decimal) -> Decimal:
    """Refuse a withdrawal that would take the account past its rolling 24-hour limit and
    return the amount's worth in the reference asset (to be stored on the withdrawal).

    Takes a transaction-scoped advisory lock on the user first, so concurrent requests of
    one account are counted one after the other: two that together pass the limit cannot
    both be made. Must run inside the request's transaction, before its withdrawal row is
    written. Raises ``WithdrawalUnpriced`` and ``WithdrawalLimitExceeded`` (422).
    """
    value = withdrawal_limit_value(asset=asset, amount=amount)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LIMIT_LOCK_FAMILY, user.pk])
    limit = withdrawal_limit_get(user=user)
    if value > limit.remaining:
        reference = limit.reference_asset
        raise WithdrawalLimitExceeded(
            f"This withdrawal is worth {reference_to_str(value)} {reference}; "
            f"{reference_to_str(limit.remaining)} {reference} of your "
            f"{reference_to_str(limit.daily_limit)} {reference} 24-hour limit is left.",
            details={
                "asset": asset.code,
                "reference_asset": reference,
                "value": reference_to_str(value),
                "daily_limit": reference_to_str(limit.daily_limit),
                "used": reference_to_str(limit.used),
                "remaining": reference_to_str(limit.remaining),
                "tier": limit.tier.code if limit.tier else None,
            },
        )
    return value
