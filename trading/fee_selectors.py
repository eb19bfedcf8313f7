"""Reads of the fee schedule: the rates each account pays (ARCHITECTURE §4 "Fees").

One rule, used by the matcher when it settles a trade and by every place that reports a
rate (``/api/v3/account``, ``/api/v3/account/commission``, ``/sapi/v1/asset/tradeFee``,
``/api/v1/account/fees``, the account page), so what is reported is what is charged:

1. the account's own rates: an operator's rate override (per side), else the rates of its
   tier: the pinned tier (``FeeProfile.tier_override``) or the highest ``FeeTier`` whose
   ``min_volume`` its stored 30-day volume reaches. Own rates are on the scale of the base
   tier (the lowest ``min_volume``, normally 0): VIP 1's taker 0.16 % against the base's
   0.2 % is a 20 % discount;
2. in a market, the market's own rate (``Market.maker_fee`` / ``taker_fee``: what a base-tier
   account pays there) times that ratio, rounded down to 8 places (Binance reports rates
   with 8). A market at the base tier's rates (the default) charges exactly the tier rates;
   a promotion (a zero-fee or cheaper pair) and a dearer pair scale every tier alike. The
   ratio is at most 1: nobody pays more than the market's own rate.

An account no tier covers, or any account when the base tier is free (no ratio), pays the
market's rates.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.db import connection

from accounts.models import User
from exchange_site.db import array_literal
from exchange_site.decimals import decimal_to_str
from trading.models import FeeProfile, FeeTier, Market
from wallets.limits import reference_to_str

RATE_QUANTUM = Decimal("0.00000001")

# For each user id: its own (maker, taker) rates, NULL where neither a tier nor an override
# gives one, and the base tier's. The tiers are found by LATERAL lookups, so an edit of the
# schedule applies to the very next batch without recomputing anything.
_RATES_SQL = f"""
SELECT u.id,
       COALESCE(p.maker_fee_override, t.maker_fee),
       COALESCE(p.taker_fee_override, t.taker_fee),
       b.maker_fee,
       b.taker_fee
FROM unnest(%s::text::bigint[]) AS u(id)
LEFT JOIN "{FeeProfile._meta.db_table}" p ON p.user_id = u.id
LEFT JOIN LATERAL (
    SELECT tier.maker_fee, tier.taker_fee
    FROM "{FeeTier._meta.db_table}" tier
    WHERE CASE WHEN p.tier_override_id IS NOT NULL THEN tier.id = p.tier_override_id
               ELSE tier.min_volume <= COALESCE(p.volume_30d, 0) END
    ORDER BY tier.min_volume DESC
    LIMIT 1
) t ON true
LEFT JOIN LATERAL (
    SELECT base.maker_fee, base.taker_fee
    FROM "{FeeTier._meta.db_table}" base
    ORDER BY base.min_volume
    LIMIT 1
) b ON true
"""


def fee_rate_in_market(own: Decimal | None, base: Decimal | None, market_rate: Decimal) -> Decimal:
    """Step 2 of the module's rule for one side: ``market_rate × own / base``, at most the
    market's rate, rounded down to 8 places."""
    if own is None or not base or own >= base:
        return market_rate
    return (market_rate * own / base).quantize(RATE_QUANTUM, rounding=ROUND_DOWN)


@dataclass(frozen=True, slots=True)
class AccountRates:
    """One account's own rates (None: no tier or override gives one) and the base tier's."""

    maker: Decimal | None
    taker: Decimal | None
    base_maker: Decimal | None
    base_taker: Decimal | None

    def in_market(self, maker_fee: Decimal, taker_fee: Decimal) -> tuple[Decimal, Decimal]:
        """(maker, taker): what the account pays in a market with these rates."""
        return (
            fee_rate_in_market(self.maker, self.base_maker, maker_fee),
            fee_rate_in_market(self.taker, self.base_taker, taker_fee),
        )

    def standard(self) -> tuple[Decimal | None, Decimal | None]:
        """(maker, taker): what the account pays in a market at the base tier's rates (the
        default): its own rates, at most the base tier's. None without a schedule."""
        if self.base_maker is None or self.base_taker is None:
            return None, None
        return self.in_market(self.base_maker, self.base_taker)


def fee_rates_for_users(*, user_ids) -> dict[int, AccountRates]:
    """{user id: its ``AccountRates``} (step 1 of the module's rule). One query, whatever
    the count."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_RATES_SQL, [array_literal(ids)])
        return {user_id: AccountRates(*rates) for user_id, *rates in cursor.fetchall()}


@dataclass(frozen=True)
class FeeStanding:
    """One account's place in the fee schedule, as the API and the account page show it."""

    tier: FeeTier | None
    tier_pinned: bool
    volume_30d: Decimal
    volume_updated_at: datetime | None
    reference_asset: str
    maker_fee: Decimal | None
    taker_fee: Decimal | None
    maker_overridden: bool
    taker_overridden: bool
    next_tier: FeeTier | None


def fee_standing_for_user(*, user: User) -> FeeStanding:
    """The account's volume, tier and own rates (what it pays in a market at the base tier's
    rates), and the next tier by volume."""
    profile = FeeProfile.objects.filter(user_id=user.pk).first()
    volume = profile.volume_30d if profile else Decimal(0)
    pinned = profile.tier_override if profile else None
    tiers = list(FeeTier.objects.order_by("min_volume"))
    by_volume = [tier for tier in tiers if tier.min_volume <= volume]
    tier = pinned or (by_volume[-1] if by_volume else None)
    maker_override = profile.maker_fee_override if profile else None
    taker_override = profile.taker_fee_override if profile else None
    following = [item for item in tiers if item.min_volume > volume] if not pinned else []
    maker, taker = fee_rates_for_users(user_ids=[user.pk])[user.pk].standard()
    return FeeStanding(
        tier=tier,
        tier_pinned=pinned is not None,
        volume_30d=volume,
        volume_updated_at=profile.volume_updated_at if profile else None,
        reference_asset=settings.WITHDRAWAL_LIMIT_ASSET,
        maker_fee=maker,
        taker_fee=taker,
        maker_overridden=maker_override is not None,
        taker_overridden=taker_override is not None,
        next_tier=following[0] if following else None,
    )


def fee_rates_for_markets(*, user: User, markets=None) -> list[tuple[Market, Decimal, Decimal]]:
    """[(market, maker, taker)]: what the account pays in each market (or in ``markets``),
    by symbol: ``AccountRates.in_market``, as the matcher charges."""
    if markets is None:
        markets = Market.objects.select_related("base_asset", "quote_asset").order_by("symbol")
    rates = fee_rates_for_users(user_ids=[user.pk])[user.pk]
    return [(market, *rates.in_market(market.maker_fee, market.taker_fee)) for market in markets]


def fee_tier_list() -> list[FeeTier]:
    """The schedule, lowest volume first."""
    return list(FeeTier.objects.order_by("min_volume"))


def _rate_text(value: Decimal | None) -> str | None:
    return None if value is None else decimal_to_str(value)


def _tier_summary(tier: FeeTier | None) -> dict | None:
    if tier is None:
        return None
    return {
        "code": tier.code,
        "name": tier.name,
        "min_volume": decimal_to_str(tier.min_volume, 2),
        "maker_fee": decimal_to_str(tier.maker_fee),
        "taker_fee": decimal_to_str(tier.taker_fee),
    }


def fee_summary_for_user(*, user: User) -> dict:
    """The account's fee standing and its rates in every market, as ``GET
    /api/v1/account/fees`` and the account page show them (rates as text, 0.001 = 0.1 %)."""
    standing = fee_standing_for_user(user=user)
    return {
        "reference_asset": standing.reference_asset,
        "volume_30d": reference_to_str(standing.volume_30d),
        "volume_updated_at": (
            standing.volume_updated_at.isoformat() if standing.volume_updated_at else None
        ),
        "tier": _tier_summary(standing.tier),
        "tier_pinned": standing.tier_pinned,
        "maker_fee": _rate_text(standing.maker_fee),
        "taker_fee": _rate_text(standing.taker_fee),
        "maker_fee_overridden": standing.maker_overridden,
        "taker_fee_overridden": standing.taker_overridden,
        "next_tier": _tier_summary(standing.next_tier),
        "markets": [
            {
                "symbol": market.symbol,
                "maker_fee": decimal_to_str(maker),
                "taker_fee": decimal_to_str(taker),
            }
            for market, maker, taker in fee_rates_for_markets(user=user)
        ],
        "schedule": [_tier_summary(tier) for tier in fee_tier_list()],
    }
