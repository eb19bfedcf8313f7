"""Reads of the fee schedule: the rates each account pays (ARCHITECTURE §4 "Fees").

One rule, used by the matcher when it settles a trade and by every place that reports a
rate (``/api/v3/account``, ``/api/v3/account/commission``, ``/sapi/v1/asset/tradeFee``,
``/api/v1/account/fees``, the account page), so what is reported is what is charged:

1. the account's own rates: an operator's rate override (per side), else the rates of its
   tier: the pinned tier (``FeeProfile.tier_override``) or the highest ``FeeTier`` whose
   ``min_volume`` its stored 30-day volume reaches;
2. in a market, the lower of that and the market's own rate (``Market.maker_fee`` /
   ``taker_fee``): a market's rate is its list price, the most anyone pays there, and a
   market with a lower rate (a promotion, a zero-fee pair) is lower for everyone.

An account that no tier covers (an operator removed the tier at volume 0) and that has no
override pays the market's rates.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection

from accounts.models import User
from exchange_site.db import array_literal
from trading.models import FeeProfile, FeeTier, Market

# For each user id: its own (maker, taker) rates, NULL where neither a tier nor an override
# gives one. The tier is found by a LATERAL lookup, so an edit of the schedule applies to
# the very next batch without recomputing anything.
_RATES_SQL = f"""
SELECT u.id,
       COALESCE(p.maker_fee_override, t.maker_fee),
       COALESCE(p.taker_fee_override, t.taker_fee),
       t.id
FROM unnest(%s::text::bigint[]) AS u(id)
LEFT JOIN "{FeeProfile._meta.db_table}" p ON p.user_id = u.id
LEFT JOIN LATERAL (
    SELECT tier.id, tier.maker_fee, tier.taker_fee
    FROM "{FeeTier._meta.db_table}" tier
    WHERE CASE WHEN p.tier_override_id IS NOT NULL THEN tier.id = p.tier_override_id
               ELSE tier.min_volume <= COALESCE(p.volume_30d, 0) END
    ORDER BY tier.min_volume DESC
    LIMIT 1
) t ON true
"""

Rates = tuple[Decimal | None, Decimal | None]


def fee_rates_for_users(*, user_ids) -> dict[int, Rates]:
    """{user id: (maker, taker)}: each account's own rates (step 1 of the module's rule),
    None for a side neither a tier nor an override prices. One query, whatever the count."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_RATES_SQL, [array_literal(ids)])
        return {user_id: (maker, taker) for user_id, maker, taker, _tier in cursor.fetchall()}


def fee_rate_in_market(own: Decimal | None, market_rate: Decimal) -> Decimal:
    """Step 2: the lower of the account's own rate and the market's."""
    return market_rate if own is None or own > market_rate else own


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
    """The account's volume, tier and own rates (step 1), and the next tier by volume."""
    profile = FeeProfile.objects.filter(user_id=user.pk).first()
    volume = profile.volume_30d if profile else Decimal(0)
    pinned = profile.tier_override if profile else None
    tiers = list(FeeTier.objects.order_by("min_volume"))
    by_volume = [tier for tier in tiers if tier.min_volume <= volume]
    tier = pinned or (by_volume[-1] if by_volume else None)
    maker_override = profile.maker_fee_override if profile else None
    taker_override = profile.taker_fee_override if profile else None
    following = [item for item in tiers if item.min_volume > volume] if not pinned else []
    return FeeStanding(
        tier=tier,
        tier_pinned=pinned is not None,
        volume_30d=volume,
        volume_updated_at=profile.volume_updated_at if profile else None,
        reference_asset=settings.WITHDRAWAL_LIMIT_ASSET,
        maker_fee=maker_override if maker_override is not None else tier and tier.maker_fee,
        taker_fee=taker_override if taker_override is not None else tier and tier.taker_fee,
        maker_overridden=maker_override is not None,
        taker_overridden=taker_override is not None,
        next_tier=following[0] if following else None,
    )


def fee_rates_for_markets(*, user: User, markets=None) -> list[tuple[Market, Decimal, Decimal]]:
    """[(market, maker, taker)]: what the account pays in each market (or in ``markets``),
    by symbol. The same two steps as the matcher's."""
    if markets is None:
        markets = Market.objects.select_related("base_asset", "quote_asset").order_by("symbol")
    own_maker, own_taker = fee_rates_for_users(user_ids=[user.pk])[user.pk]
    return [
        (
            market,
            fee_rate_in_market(own_maker, market.maker_fee),
            fee_rate_in_market(own_taker, market.taker_fee),
        )
        for market in markets
    ]


def fee_tier_list() -> list[FeeTier]:
    """The schedule, lowest volume first."""
    return list(FeeTier.objects.order_by("min_volume"))
