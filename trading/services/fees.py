"""The fee schedule's writes (ARCHITECTURE §4 "Fees"): the accounts' 30-day volumes, the
operators' tiers and per-account overrides. Every operator change is in the audit trail.

The rates themselves are read by ``trading.fee_selectors``, at each matcher batch: a change
here applies to the next batch, with nothing to invalidate.
"""

from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from accounts.audit import operator_action_record, reason_require
from accounts.models import User
from exchange_site.db import array_literal
from exchange_site.decimals import decimal_to_str
from trading.models import FeeProfile, FeeTier, Market, Trade
from wallets.limits import asset_reference_price
from wallets.models import AMOUNT_QUANTUM

VOLUME_WINDOW = timedelta(days=30)
TIER_FIELDS = ("code", "name", "min_volume", "maker_fee", "taker_fee", "description")
RATE_QUANTUM = Decimal("0.000001")  # the rate columns keep 6 decimal places

# Each account's quote volume per market over the window: a trade counts for its buyer and
# its seller (never the same account: self-trades are prevented).
_VOLUME_SQL = f"""
SELECT user_id, market_id, SUM(quote_quantity) FROM (
    SELECT buyer_id AS user_id, market_id, quote_quantity FROM "{Trade._meta.db_table}"
    WHERE created_at > %(since)s AND created_at <= %(now)s {{buyers}}
    UNION ALL
    SELECT seller_id, market_id, quote_quantity FROM "{Trade._meta.db_table}"
    WHERE created_at > %(since)s AND created_at <= %(now)s {{sellers}}
) AS sides
GROUP BY user_id, market_id
"""


def _volumes(*, user_ids: list[int] | None, now) -> dict[int, Decimal]:
    """{user id: 30-day volume in the reference asset}: each market's quote volume at the
    quote asset's price now (``wallets.limits.asset_reference_price``, the withdrawal
    limits' rule); a quote asset nothing prices counts for nothing."""
    params = {"since": now - VOLUME_WINDOW, "now": now}
    buyers = sellers = ""
    if user_ids is not None:
        params["ids"] = array_literal(user_ids)
        buyers = "AND buyer_id = ANY(%(ids)s::text::bigint[])"
        sellers = "AND seller_id = ANY(%(ids)s::text::bigint[])"
    with connection.cursor() as cursor:
        cursor.execute(_VOLUME_SQL.format(buyers=buyers, sellers=sellers), params)
        rows = cursor.fetchall()
    quote_assets = {
        market.pk: market.quote_asset
        for market in Market.objects.select_related("quote_asset").filter(
            pk__in={market_id for _, market_id, _ in rows}
        )
    }
    prices: dict[int, Decimal | None] = {}
    volumes: dict[int, Decimal] = {}
    for user_id, market_id, quote_volume in rows:
        asset = quote_assets[market_id]
        if asset.pk not in prices:
            prices[asset.pk] = asset_reference_price(asset=asset)
        price = prices[asset.pk]
        if price is not None:
            volumes[user_id] = volumes.get(user_id, Decimal(0)) + quote_volume * price
    return {user: value.quantize(AMOUNT_QUANTUM) for user, value in volumes.items()}


@transaction.atomic
def fee_volumes_refresh(*, user_ids: list[int] | None = None, now=None) -> int:
    """Recompute and store the 30-day traded volume (in the reference asset) of the given
    accounts, or of every account (``None``): beat runs it daily, operators on demand.

    Takes no lock of its own: each profile row is written by one upsert, and the matcher
    reads the stored volume at its next batch. Accounts whose volume fell to nothing are
    set to 0 in the same transaction. Returns the number of accounts with a volume.
    """
    now = now or timezone.now()
    volumes = _volumes(user_ids=user_ids, now=now)
    stale = FeeProfile.objects.filter(volume_30d__gt=0)
    if user_ids is not None:
        stale = stale.filter(user_id__in=user_ids)
    stale.exclude(user_id__in=list(volumes)).update(volume_30d=0, volume_updated_at=now)
    if user_ids is not None:
        for user_id in set(user_ids) - set(volumes):
            FeeProfile.objects.get_or_create(user_id=user_id)
        FeeProfile.objects.filter(user_id__in=user_ids).exclude(user_id__in=list(volumes)).update(
            volume_updated_at=now
        )
    FeeProfile.objects.bulk_create(
        [
            FeeProfile(user_id=user_id, volume_30d=value, volume_updated_at=now)
            for user_id, value in sorted(volumes.items())
        ],
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=["volume_30d", "volume_updated_at", "updated_at"],
    )
    return len(volumes)


def fee_rate_validate(value, field: str) -> Decimal | None:
    """A fee rate as stored: 0 <= rate < 1, at most 6 places (None passes). Raises
    ``ValidationError`` keyed by ``field``."""
    if value is None:
        return None
    if not isinstance(value, Decimal) or not value.is_finite() or not 0 <= value < 1:
        raise ValidationError({field: ["A rate from 0 up to (not including) 1, e.g. 0.001."]})
    if value.quantize(RATE_QUANTUM) != value:
        raise ValidationError({field: ["At most 6 decimal places."]})
    return value


@transaction.atomic
def fee_tier_save(*, tier: FeeTier | None, values: dict, actor: User, reason: str) -> FeeTier:
    """Create a tier (``tier`` None) or change one (``values``: field → value, of
    ``TIER_FIELDS``), with a reason kept in the audit trail. The schedule must keep a tier
    at volume 0 (every account needs a tier) and distinct volumes. Locks the tier rows
    (the whole schedule, in id order), so two operators' edits are checked one after the
    other. Raises ``ValidationError``. Applies from the matcher's next batch.
    """
    reason = reason_require(reason)
    list(FeeTier.objects.select_for_update().order_by("id"))
    for field in ("maker_fee", "taker_fee"):
        if field in values:
            fee_rate_validate(values[field], field)
    volume = values.get("min_volume")
    if volume is not None and (not isinstance(volume, Decimal) or volume < 0):
        raise ValidationError({"min_volume": ["A volume of 0 or more."]})
    creating = tier is None
    if creating:
        tier = FeeTier()
        before = {}
    else:
        tier = FeeTier.objects.get(pk=tier.pk)
        before = {name: getattr(tier, name) for name in TIER_FIELDS}
    for name, value in values.items():
        if name not in TIER_FIELDS:
            raise ValidationError({name: ["Not a field of a fee tier."]})
        setattr(tier, name, value)
    others = FeeTier.objects.exclude(pk=tier.pk)
    if others.filter(min_volume=tier.min_volume).exists():
        raise ValidationError({"min_volume": ["Another tier starts at this volume."]})
    if others.filter(code=tier.code).exists():
        raise ValidationError({"code": ["Another tier has this code."]})
    if tier.min_volume != 0 and not others.filter(min_volume=0).exists():
        raise ValidationError(
            {"min_volume": ["The schedule needs a tier at volume 0: every account has a tier."]}
        )
    changes = {
        name: [_text(before.get(name)), _text(getattr(tier, name))]
        for name in TIER_FIELDS
        if before.get(name) != getattr(tier, name)
    }
    if not changes:
        return tier
    tier.save()
    operator_action_record(
        actor=actor,
        action="fee_tier_create" if creating else "fee_tier_update",
        target=tier,
        reason=reason,
        details=changes,
    )
    return tier


def _text(value) -> str | None:
    if value is None:
        return None
    return decimal_to_str(value) if isinstance(value, Decimal) else str(value)


@transaction.atomic
def fee_override_set(
    *,
    user: User,
    tier: FeeTier | None,
    maker_fee: Decimal | None,
    taker_fee: Decimal | None,
    actor: User,
    reason: str,
) -> FeeProfile:
    """An operator pins an account's tier and/or gives it rates of its own (None each: back
    to the schedule), with a reason kept in the audit trail. Like a tier's, the rates are
    scaled by each market's own (``trading.fee_selectors``). Locks the profile row. Raises
    ``ValidationError``. Applies from the matcher's next batch."""
    reason = reason_require(reason)
    fee_rate_validate(maker_fee, "maker_fee_override")
    fee_rate_validate(taker_fee, "taker_fee_override")
    FeeProfile.objects.get_or_create(user=user)
    profile = FeeProfile.objects.select_for_update().get(user=user)
    before = (profile.tier_override, profile.maker_fee_override, profile.taker_fee_override)
    after = (tier, maker_fee, taker_fee)
    if before == after:
        return profile
    profile.tier_override = tier
    profile.maker_fee_override = maker_fee
    profile.taker_fee_override = taker_fee
    profile.override_by = actor
    profile.override_at = timezone.now()
    profile.save()
    operator_action_record(
        actor=actor,
        action="fee_override_set",
        target=user,
        reason=reason,
        details={
            "tier": [before[0].code if before[0] else None, tier.code if tier else None],
            "maker_fee": [_text(before[1]), _text(maker_fee)],
            "taker_fee": [_text(before[2]), _text(taker_fee)],
        },
    )
    return profile
