"""The operators' market console (issue 8): list a market, change its trading rules, halt
it, put it in cancel-only, resume it. Every change is recorded in the audit trail."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DecimalField, F, Q, Value
from django.db.models.functions import Mod

from accounts.audit import operator_action_record, reason_require
from accounts.models import User
from exchange_site.decimals import decimal_to_str
from trading.exceptions import (
    MarketStatusUnchanged,
)
from trading.matcher.wakeup import matcher_wake
from trading.models import Market, Order
from wallets.models import AMOUNT_QUANTUM, Asset

# --- Operator console (issue 8) ------------------------------------------------------------

MARKET_STATUS_ACTIONS = {
    Market.Status.HALTED: "market_halt",
    Market.Status.CANCEL_ONLY: "market_cancel_only",
    Market.Status.TRADING: "market_resume",
}
RULE_FIELDS = (
    "tick_size",
    "lot_size",
    "min_qty",
    "max_qty",
    "min_notional",
    "maker_fee",
    "taker_fee",
)
FEE_QUANTUM = Decimal("0.000001")  # Market.maker_fee/taker_fee keep 6 decimal places


@transaction.atomic
def market_status_set(*, market_id: int, status: str, actor: User, reason: str) -> Market:
    """Halt a market, put it in cancel-only or resume trading; effective at once.

    ``halted``: order entry refuses new orders and cancels (MARKET_HALTED) and the matcher
    runs nothing: queued commands wait, in order, until the market resumes (Binance's HALT).
    ``cancel_only``: new orders are refused (MARKET_CANCEL_ONLY); the matcher runs cancels
    and rejects orders that were queued before the switch, releasing their funds (BREAK).
    Locks the market row, which the matcher also locks for each batch: the change applies
    from the next batch on. Raises ``ValidationError`` (no reason, unknown status) and
    ``MarketStatusUnchanged`` (409).
    """
    reason = reason_require(reason)
    if status not in Market.Status.values:
        raise ValidationError({"status": [f"Unknown market status {status!r}."]})
    market = Market.objects.select_for_update().get(pk=market_id)
    if market.status == status:
        raise MarketStatusUnchanged(details={"symbol": market.symbol, "status": status})
    previous = market.status
    market.status = status
    market.save(update_fields=["status", "updated_at"])
    operator_action_record(
        actor=actor,
        action=MARKET_STATUS_ACTIONS[status],
        target=market,
        reason=reason,
        details={"from": previous, "to": status},
    )
    symbol = market.symbol
    # Resuming must not wait for the matcher's next poll to run the queued commands.
    transaction.on_commit(lambda: matcher_wake(symbol))
    return market


def _storable(value: Decimal) -> bool:
    return value.is_finite() and value.adjusted() < 18 and value == value.quantize(AMOUNT_QUANTUM)


def _off_grid_orders(market: Market, step: Decimal, fields: tuple[str, ...]) -> list[int]:
    """Ids (up to 10) of the market's live orders with a value in ``fields`` off ``step``."""
    step_value = Value(step, output_field=DecimalField(max_digits=36, decimal_places=18))
    off = Q()
    annotations = {}
    for name in fields:
        annotations[f"{name}_rest"] = Mod(F(name), step_value)
        # Amounts are positive, so a remainder is either 0 or > 0; NULL fields never match.
        off |= Q(**{f"{name}_rest__gt": 0})
    return list(
        Order.objects.filter(market=market, status__in=Order.LIVE)
        .annotate(**annotations)
        .filter(off)
        .order_by("id")
        .values_list("id", flat=True)[:10]
    )


def market_rules_validate(*, market: Market, rules: dict[str, Decimal]) -> dict[str, Decimal]:
    """Check new trading rules for ``market`` (an unsaved market for a new listing) and
    return those that differ from its current ones.

    Refuses (``ValidationError`` keyed by field) a step that is not a positive amount with
    at most 18 decimal places, fees outside [0, 1) or with over 6 decimal places,
    ``min_qty > max_qty``, and a tick or lot size that the live orders' prices, stop prices,
    trailing peaks or quantities (iceberg parts included; or the last trade price) are not
    whole multiples of: the matcher keeps the book in integer ticks and lots.
    """
    unknown = set(rules) - set(RULE_FIELDS)
    if unknown:
        raise ValidationError({name: ["Not a trading rule."] for name in sorted(unknown)})
    new = {name: rules.get(name, getattr(market, name)) for name in RULE_FIELDS}
    errors: dict[str, list[str]] = {}
    for name in ("tick_size", "lot_size", "min_qty", "max_qty", "min_notional"):
        value = new[name]
        if value is None or not _storable(value) or value < 0:
            errors[name] = ["Give a non-negative amount with at most 18 decimal places."]
        elif value == 0 and name != "min_notional":
            errors[name] = ["Must be greater than zero."]
    for name in ("maker_fee", "taker_fee"):
        value = new[name]
        if value is None or not value.is_finite() or not Decimal(0) <= value < Decimal(1):
            errors[name] = ["A fee rate is at least 0 and below 1 (0.001 = 0.1 %)."]
        elif value != value.quantize(FEE_QUANTUM):
            errors[name] = ["A fee rate has at most 6 decimal places."]
    if not errors and new["min_qty"] > new["max_qty"]:
        errors["max_qty"] = ["Must be at least the minimum quantity."]
    if market.pk is not None and not errors:
        if new["tick_size"] != market.tick_size:
            offenders = _off_grid_orders(
                market, new["tick_size"], ("price", "stop_price", "trailing_peak")
            )
            if offenders:
                errors["tick_size"] = [
                    f"{decimal_to_str(new['tick_size'])} does not divide the prices of live "
                    f"orders {', '.join(map(str, offenders))}."
                ]
            elif market.last_price is not None and market.last_price % new["tick_size"]:
                errors["tick_size"] = [
                    f"{decimal_to_str(new['tick_size'])} does not divide the last trade "
                    f"price {decimal_to_str(market.last_price)}."
                ]
        if new["lot_size"] != market.lot_size:
            offenders = _off_grid_orders(
                market,
                new["lot_size"],
                ("quantity", "filled_quantity", "iceberg_quantity", "iceberg_visible"),
            )
            if offenders:
                errors["lot_size"] = [
                    f"{decimal_to_str(new['lot_size'])} does not divide the quantities of "
                    f"live orders {', '.join(map(str, offenders))}."
                ]
    if errors:
        raise ValidationError(errors)
    return {name: value for name, value in new.items() if value != getattr(market, name)}


@transaction.atomic
def market_rules_update(*, market_id: int, rules: dict[str, Decimal], actor: User, reason: str):
    """Change a market's trading rules and fees (``rules``: field → new value).

    Locks the market row first; the matcher takes the same lock for each batch, so the
    check of the live orders and the change happen between two batches. New orders follow
    the new rules at once; the matcher reloads them on its next batch (rebuilding the book
    when the tick or lot size changed; an order accepted under the old rules that is off
    the new grid is rejected there). Raises ``ValidationError`` (see
    ``market_rules_validate``; also without a reason). Returns the market; nothing is
    written or recorded when nothing changed.
    """
    reason = reason_require(reason)
    market = Market.objects.select_for_update().get(pk=market_id)
    changes = market_rules_validate(market=market, rules=rules)
    if not changes:
        return market
    details = {
        name: [decimal_to_str(getattr(market, name)), decimal_to_str(value)]
        for name, value in changes.items()
    }
    for name, value in changes.items():
        setattr(market, name, value)
    market.save(update_fields=[*changes, "updated_at"])
    operator_action_record(
        actor=actor, action="market_rules_update", target=market, reason=reason, details=details
    )
    symbol = market.symbol
    transaction.on_commit(lambda: matcher_wake(symbol))
    return market


@transaction.atomic
def market_create(
    *,
    base_asset: Asset,
    quote_asset: Asset,
    rules: dict[str, Decimal],
    actor: User,
    reason: str,
    status: str = Market.Status.TRADING,
) -> Market:
    """List a new market ``BASE-QUOTE``. A running matcher picks it up when restarted
    (``run_matcher`` loads its markets at start). Raises ``ValidationError`` for a pair
    already listed, equal assets or bad rules."""
    reason = reason_require(reason)
    if base_asset.pk == quote_asset.pk:
        raise ValidationError({"quote_asset": ["The base and quote assets must differ."]})
    symbol = f"{base_asset.code}-{quote_asset.code}"
    if Market.objects.filter(symbol=symbol).exists():
        raise ValidationError({"base_asset": [f"{symbol} is already listed."]})
    market = Market(symbol=symbol, base_asset=base_asset, quote_asset=quote_asset, status=status)
    market_rules_validate(market=market, rules=rules)
    for name in RULE_FIELDS:
        if name in rules:
            setattr(market, name, rules[name])
    market.save()
    operator_action_record(
        actor=actor,
        action="market_create",
        target=market,
        reason=reason,
        details={name: decimal_to_str(getattr(market, name)) for name in RULE_FIELDS},
    )
    return market
