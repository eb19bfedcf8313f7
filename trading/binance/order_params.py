"""Binance's order parameters read into the exchange's requests (``services.OrderRequest``,
``services.OcoRequest``), each bad value refused with the error Binance gives for it.

Binance checks parameters and filters before anything reaches its matching engine; so does
this module, before any service runs: a refused request changes nothing.

What the engine cannot do is refused here, not approximated: ``TAKE_PROFIT`` without
``trailingDelta`` and ``STOP_LOSS`` with both ``trailingDelta`` and ``stopPrice`` (the engine's
activation price works in the order's favour, which is Binance's trailing ``TAKE_PROFIT``), an
iceberg stop-limit, and OCOs whose limit leg is not a ``LIMIT_MAKER``: -1014 / -1158.
"""

import re
import secrets
import string
from dataclasses import dataclass
from decimal import Decimal

from trading import services
from trading.api.serializers import CLIENT_ORDER_ID_PATTERN
from trading.binance import errors
from trading.binance.errors import BinanceError
from trading.binance.formatters import (
    ICEBERG_PARTS_LIMIT,
    TRAILING_DELTA_MAX,
    TRAILING_DELTA_MIN,
)
from trading.binance.params import Params
from trading.models import Market, Order

SIGNED_PARAMS = {"timestamp", "recvWindow"}
ORDER_PARAMS = SIGNED_PARAMS | {
    "symbol",
    "side",
    "type",
    "timeInForce",
    "quantity",
    "quoteOrderQty",
    "price",
    "newClientOrderId",
    "stopPrice",
    "icebergQty",
    "trailingDelta",
    "newOrderRespType",
    "selfTradePreventionMode",
    "strategyId",
    "strategyType",
    "computeCommissionRates",
}
CANCEL_REPLACE_PARAMS = ORDER_PARAMS | {
    "cancelReplaceMode",
    "cancelNewClientOrderId",
    "cancelOrigClientOrderId",
    "cancelOrderId",
    "cancelRestrictions",
    "orderRateLimitExceededMode",
}
_OCO_LEG_FIELDS = (
    "Type",
    "ClientOrderId",
    "IcebergQty",
    "Price",
    "StopPrice",
    "TrailingDelta",
    "TimeInForce",
    "StrategyId",
    "StrategyType",
)
_OCO_COMMON = SIGNED_PARAMS | {
    "symbol",
    "listClientOrderId",
    "side",
    "quantity",
    "newOrderRespType",
    "selfTradePreventionMode",
}
OCO_PARAMS = _OCO_COMMON | {
    f"{leg}{field}" for leg in ("above", "below") for field in _OCO_LEG_FIELDS
}
LEGACY_OCO_PARAMS = _OCO_COMMON | {
    "limitClientOrderId",
    "price",
    "limitIcebergQty",
    "limitStrategyId",
    "limitStrategyType",
    "stopClientOrderId",
    "stopPrice",
    "trailingDelta",
    "stopLimitPrice",
    "stopIcebergQty",
    "stopLimitTimeInForce",
    "stopStrategyId",
    "stopStrategyType",
}

# Binance's order types by (our type, post-only).
ORDER_TYPES = {
    "LIMIT": (Order.Type.LIMIT, False),
    "LIMIT_MAKER": (Order.Type.LIMIT, True),
    "MARKET": (Order.Type.MARKET, False),
    "STOP_LOSS": (Order.Type.STOP, False),
    "STOP_LOSS_LIMIT": (Order.Type.STOP_LIMIT, False),
    # Trailing only (see the module's docstring).
    "TAKE_PROFIT": (Order.Type.STOP, False),
    "TAKE_PROFIT_LIMIT": (Order.Type.STOP_LIMIT, False),
}
TIME_IN_FORCE_TYPES = ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
STOP_LOSS_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT")
TAKE_PROFIT_TYPES = ("TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
LIMIT_TYPES = ("LIMIT", "LIMIT_MAKER")
RESPONSE_TYPES = ("ACK", "RESULT", "FULL")
CANCEL_REPLACE_MODES = ("STOP_ON_FAILURE", "ALLOW_FAILURE")
CANCEL_RESTRICTIONS = ("ONLY_NEW", "ONLY_PARTIALLY_FILLED")
OCO_TYPES = ("STOP_LOSS_LIMIT", "STOP_LOSS", "LIMIT_MAKER", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")

_CLIENT_ID_ALPHABET = string.ascii_letters + string.digits
_CLIENT_ID = re.compile(CLIENT_ORDER_ID_PATTERN)


def generated_client_id() -> str:
    """Binance names an order the client did not name; so do we (22 characters)."""
    return "".join(secrets.choice(_CLIENT_ID_ALPHABET) for _ in range(22))


def client_id(params: Params, name: str, *, generate: bool = True) -> str | None:
    value = params.text(name)
    if value is None:
        return generated_client_id() if generate else None
    if not _CLIENT_ID.fullmatch(value):
        raise errors.illegal_chars(name, CLIENT_ORDER_ID_PATTERN)
    return value


def _filter_failure(name: str) -> BinanceError:
    return BinanceError(errors.INVALID_MESSAGE, f"Filter failure: {name}")


def iceberg_quantity(
    value: Decimal | None, *, market: Market, quantity: Decimal | None, name: str = "icebergQty"
) -> Decimal | None:
    """``icebergQty`` checked against the order's quantity and the ICEBERG_PARTS and LOT_SIZE
    filters; 0 means no iceberg, as Binance reads it."""
    if not value:
        return None
    # Before any arithmetic: a negative, huge or over-fine value cannot be an iceberg part.
    if value < 0 or value.adjusted() >= 18 or value.adjusted() < -18:
        raise errors.illegal_chars(name)
    if quantity is not None:
        if value >= quantity:
            raise BinanceError(errors.NEW_ORDER_REJECTED, "IcebergQty exceeds QTY.")
        # ceil(quantity / value) parts, without a division that could overflow.
        if quantity > value * ICEBERG_PARTS_LIMIT:
            raise _filter_failure("ICEBERG_PARTS")
    if value % market.lot_size:
        raise _filter_failure("LOT_SIZE")
    return value


def trailing_delta(params: Params, name: str) -> int | None:
    """``trailingDelta`` in basis points, within the TRAILING_DELTA filter."""
    value = params.integer(name)
    if value is not None and not TRAILING_DELTA_MIN <= value <= TRAILING_DELTA_MAX:
        raise _filter_failure("TRAILING_DELTA")
    return value


def response_type(params: Params, default: str) -> str:
    return params.choice("newOrderRespType", RESPONSE_TYPES) or default


def order_request(
    params: Params, market: Market, *, known: set[str] = ORDER_PARAMS
) -> tuple[services.OrderRequest, str]:
    """Binance's new-order parameters as our OrderRequest, and the answer type asked for."""
    params.unread(known)
    side = params.choice(
        "side",
        ("BUY", "SELL"),
        required=True,
        error=BinanceError(errors.INVALID_SIDE, "Invalid side."),
    )
    binance_type = params.choice(
        "type",
        tuple(ORDER_TYPES),
        required=True,
        error=BinanceError(errors.INVALID_ORDER_TYPE, "Invalid orderType."),
    )
    order_type, post_only = ORDER_TYPES[binance_type]
    time_in_force = params.choice(
        "timeInForce",
        tuple(Order.TimeInForce.values),
        error=BinanceError(errors.INVALID_TIF, "Invalid timeInForce."),
    )
    if binance_type in TIME_IN_FORCE_TYPES and time_in_force is None:
        raise errors.mandatory("timeInForce")
    # A LIMIT_MAKER rests or is rejected: only GTC means anything for it.
    maker_gtc = binance_type == "LIMIT_MAKER" and time_in_force == "GTC"
    if time_in_force is not None and binance_type not in TIME_IN_FORCE_TYPES and not maker_gtc:
        raise errors.not_required("timeInForce")
    quantity = params.decimal("quantity")
    stop_price = params.decimal("stopPrice")
    trailing = trailing_delta(params, "trailingDelta")
    if trailing is not None:
        if binance_type not in (*STOP_LOSS_TYPES, *TAKE_PROFIT_TYPES):
            raise errors.not_required("trailingDelta")
        if binance_type in STOP_LOSS_TYPES and stop_price is not None:
            raise errors.unsupported_combination()
    elif binance_type in TAKE_PROFIT_TYPES:
        raise errors.unsupported_combination()
    iceberg = params.decimal("icebergQty")
    if iceberg:
        if binance_type not in (*LIMIT_TYPES, "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
            raise errors.not_required("icebergQty")
        if binance_type not in LIMIT_TYPES or time_in_force not in (None, "GTC"):
            # Binance allows iceberg stop-limits; the engine's icebergs are limit orders.
            raise errors.unsupported_combination()
    iceberg = iceberg_quantity(iceberg, market=market, quantity=quantity)
    params.choice("selfTradePreventionMode", ("EXPIRE_TAKER",))
    default_response = "FULL" if binance_type in ("LIMIT", "MARKET") else "ACK"
    request = services.OrderRequest(
        symbol=market.symbol,
        side=side.lower(),
        order_type=order_type,
        quantity=quantity,
        price=params.decimal("price"),
        stop_price=stop_price,
        quote_quantity=params.decimal("quoteOrderQty"),
        time_in_force=time_in_force or Order.TimeInForce.GTC,
        post_only=post_only,
        client_order_id=client_id(params, "newClientOrderId"),
        iceberg_quantity=iceberg,
        trailing_delta=trailing,
    )
    return request, response_type(params, default_response)


# --- cancel-replace -------------------------------------------------------------------------


@dataclass(frozen=True)
class CancelReplace:
    """A parsed ``POST /order/cancelReplace``: which order to cancel and the new one."""

    request: services.OrderRequest
    response_type: str
    mode: str
    cancel_order_id: int | None
    cancel_client_order_id: str | None
    cancel_new_client_order_id: str
    restrictions: str | None


def cancel_replace_request(params: Params, market: Market) -> CancelReplace:
    request, answer = order_request(params, market, known=CANCEL_REPLACE_PARAMS)
    mode = params.choice("cancelReplaceMode", CANCEL_REPLACE_MODES, required=True)
    restrictions = params.choice(
        "cancelRestrictions",
        CANCEL_RESTRICTIONS,
        error=BinanceError(errors.INVALID_CANCEL_RESTRICTIONS, "Invalid cancelRestrictions"),
    )
    # Every new order counts against the order rate limit here, whichever mode is asked for.
    params.choice("orderRateLimitExceededMode", ("DO_NOTHING", "CANCEL_ONLY"))
    cancel_order_id = params.integer("cancelOrderId")
    cancel_client_order_id = params.text("cancelOrigClientOrderId")
    if cancel_order_id is None and cancel_client_order_id is None:
        raise BinanceError(
            errors.MANDATORY_PARAM_EMPTY_OR_MALFORMED,
            "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be sent, but both were "
            "empty/null!",
        )
    return CancelReplace(
        request=request,
        response_type=answer,
        mode=mode,
        cancel_order_id=cancel_order_id,
        cancel_client_order_id=cancel_client_order_id,
        cancel_new_client_order_id=client_id(params, "cancelNewClientOrderId"),
        restrictions=restrictions,
    )


def cancel_restriction_error(order: Order, restrictions: str | None) -> BinanceError | None:
    """Binance's ``cancelRestrictions``: ONLY_NEW cancels an order with no fill yet,
    ONLY_PARTIALLY_FILLED one with some."""
    if restrictions is None:
        return None
    filled = bool(order.filled_quantity)
    if (restrictions == "ONLY_NEW") == filled:
        return BinanceError(
            errors.CANCEL_REJECTED, "Order was not canceled due to cancel restrictions."
        )
    return None


# --- OCO ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Leg:
    binance_type: str
    price: Decimal | None
    stop_price: Decimal | None
    trailing: int | None
    time_in_force: str | None
    iceberg: Decimal | None
    client_order_id: str


def _time_in_force(params: Params, name: str) -> str | None:
    return params.choice(
        name,
        tuple(Order.TimeInForce.values),
        error=BinanceError(errors.INVALID_TIF, "Invalid timeInForce."),
    )


def _oco_request(
    params: Params,
    market: Market,
    *,
    side: str,
    quantity: Decimal,
    limit: _Leg,
    stop: _Leg,
    names: dict[str, str],
) -> services.OcoRequest:
    """Checks shared by both OCO endpoints; ``names`` maps a role (``limit_price``, ...) to
    the endpoint's parameter name for its errors."""
    if limit.price is None:
        raise errors.mandatory(names["limit_price"])
    for value, name in (
        (limit.stop_price, names["limit_stop_price"]),
        (limit.trailing, names["limit_trailing"]),
    ):
        if value is not None:
            raise errors.not_required(name)
    if limit.time_in_force not in (None, "GTC"):
        raise errors.not_required(names["limit_time_in_force"])
    if stop.stop_price is None and stop.trailing is None:
        raise errors.mandatory(names["stop_price"])
    if stop.stop_price is not None and stop.trailing is not None:
        raise errors.unsupported_combination()
    if stop.binance_type == "STOP_LOSS_LIMIT":
        if stop.price is None:
            raise errors.mandatory(names["stop_limit_price"])
        if stop.time_in_force is None:
            raise errors.mandatory(names["stop_time_in_force"])
    else:
        if stop.price is not None:
            raise errors.not_required(names["stop_limit_price"])
        if stop.time_in_force is not None:
            raise errors.not_required(names["stop_time_in_force"])
    if stop.iceberg:
        if stop.binance_type == "STOP_LOSS":
            raise errors.not_required(names["stop_iceberg"])
        raise errors.unsupported_combination()
    iceberg = iceberg_quantity(
        limit.iceberg, market=market, quantity=quantity, name=names["limit_iceberg"]
    )
    last = market.last_price
    if last is not None:
        # Binance's price rule: SELL limit > last > stop; BUY limit < last < stop.
        sign = 1 if side == "SELL" else -1
        wrong = (limit.price - last) * sign <= 0
        if stop.stop_price is not None:
            wrong = wrong or (last - stop.stop_price) * sign <= 0
        if wrong:
            raise BinanceError(
                errors.NEW_ORDER_REJECTED,
                "The relationship of the prices for the orders is not correct.",
            )
    return services.OcoRequest(
        symbol=market.symbol,
        side=side.lower(),
        quantity=quantity,
        limit_price=limit.price,
        stop_price=stop.stop_price,
        stop_limit_price=stop.price,
        stop_time_in_force=stop.time_in_force or Order.TimeInForce.GTC,
        trailing_delta=stop.trailing,
        limit_iceberg_quantity=iceberg,
        list_client_id=client_id(params, "listClientOrderId"),
        limit_client_order_id=limit.client_order_id,
        stop_client_order_id=stop.client_order_id,
    )


def _side_and_quantity(params: Params) -> tuple[str, Decimal]:
    side = params.choice(
        "side",
        ("BUY", "SELL"),
        required=True,
        error=BinanceError(errors.INVALID_SIDE, "Invalid side."),
    )
    quantity = params.decimal("quantity")
    if quantity is None:
        raise errors.mandatory("quantity")
    return side, quantity


def _oco_type(params: Params, name: str) -> str:
    value = params.text(name, required=True).upper()
    if value not in OCO_TYPES or value in TAKE_PROFIT_TYPES:
        # TAKE_PROFIT legs are Binance's; here the limit leg is a LIMIT_MAKER.
        raise BinanceError(errors.OCO_ORDER_TYPE_REJECTED, "Order type not supported in OCO.")
    return value


def _oco_slots(side: str, above: str, below: str) -> tuple[str, str]:
    """Which of ``above`` / ``below`` is the limit leg and which the stop-loss leg."""
    if above == below == "LIMIT_MAKER":
        raise BinanceError(
            errors.BOTH_OCO_ORDERS_CANNOT_BE_LIMIT, "At least one OCO order must be contingent."
        )
    if "LIMIT_MAKER" not in (above, below):
        raise BinanceError(errors.OCO_ORDER_TYPE_REJECTED, "Order type not supported in OCO.")
    if side == "SELL":
        if below == "LIMIT_MAKER":
            raise BinanceError(
                errors.SELL_OCO_LIMIT_MUST_BE_ABOVE, "A limit order in a sell OCO must be above."
            )
        return "above", "below"
    if above == "LIMIT_MAKER":
        raise BinanceError(
            errors.BUY_OCO_LIMIT_MUST_BE_BELOW, "A limit order in a buy OCO must be below."
        )
    return "below", "above"


def oco_request(params: Params, market: Market) -> tuple[services.OcoRequest, str]:
    """``POST /orderList/oco``: the above and below legs, one a LIMIT_MAKER and the other a
    STOP_LOSS or STOP_LOSS_LIMIT (sell: the limit above; buy: below)."""
    params.unread(OCO_PARAMS)
    side, quantity = _side_and_quantity(params)
    types = {"above": _oco_type(params, "aboveType"), "below": _oco_type(params, "belowType")}
    limit_slot, stop_slot = _oco_slots(side, types["above"], types["below"])

    def leg(slot: str) -> _Leg:
        return _Leg(
            binance_type=types[slot],
            price=params.decimal(f"{slot}Price"),
            stop_price=params.decimal(f"{slot}StopPrice"),
            trailing=trailing_delta(params, f"{slot}TrailingDelta"),
            time_in_force=_time_in_force(params, f"{slot}TimeInForce"),
            iceberg=params.decimal(f"{slot}IcebergQty"),
            client_order_id=client_id(params, f"{slot}ClientOrderId"),
        )

    params.choice("selfTradePreventionMode", ("EXPIRE_TAKER",))
    request = _oco_request(
        params,
        market,
        side=side,
        quantity=quantity,
        limit=leg(limit_slot),
        stop=leg(stop_slot),
        names={
            "limit_price": f"{limit_slot}Price",
            "limit_stop_price": f"{limit_slot}StopPrice",
            "limit_trailing": f"{limit_slot}TrailingDelta",
            "limit_time_in_force": f"{limit_slot}TimeInForce",
            "stop_price": f"{stop_slot}StopPrice",
            "stop_limit_price": f"{stop_slot}Price",
            "stop_time_in_force": f"{stop_slot}TimeInForce",
            "stop_iceberg": f"{stop_slot}IcebergQty",
            "limit_iceberg": f"{limit_slot}IcebergQty",
        },
    )
    return request, response_type(params, "RESULT")


def legacy_oco_request(params: Params, market: Market) -> tuple[services.OcoRequest, str]:
    """The deprecated ``POST /order/oco``: ``price`` for the LIMIT_MAKER leg, ``stopPrice``
    and/or ``trailingDelta`` (and ``stopLimitPrice`` for a STOP_LOSS_LIMIT) for the other."""
    params.unread(LEGACY_OCO_PARAMS)
    side, quantity = _side_and_quantity(params)
    stop_limit_price = params.decimal("stopLimitPrice")
    limit = _Leg(
        binance_type="LIMIT_MAKER",
        price=params.decimal("price"),
        stop_price=None,
        trailing=None,
        time_in_force=None,
        iceberg=params.decimal("limitIcebergQty"),
        client_order_id=client_id(params, "limitClientOrderId"),
    )
    stop = _Leg(
        binance_type="STOP_LOSS_LIMIT" if stop_limit_price is not None else "STOP_LOSS",
        price=stop_limit_price,
        stop_price=params.decimal("stopPrice"),
        trailing=trailing_delta(params, "trailingDelta"),
        time_in_force=_time_in_force(params, "stopLimitTimeInForce"),
        iceberg=params.decimal("stopIcebergQty"),
        client_order_id=client_id(params, "stopClientOrderId"),
    )
    params.choice("selfTradePreventionMode", ("EXPIRE_TAKER",))
    request = _oco_request(
        params,
        market,
        side=side,
        quantity=quantity,
        limit=limit,
        stop=stop,
        names={
            "limit_price": "price",
            "limit_stop_price": "price",
            "limit_trailing": "trailingDelta",
            "limit_time_in_force": "stopLimitTimeInForce",
            "stop_price": "stopPrice",
            "stop_limit_price": "stopLimitPrice",
            "stop_time_in_force": "stopLimitTimeInForce",
            "stop_iceberg": "stopIcebergQty",
            "limit_iceberg": "limitIcebergQty",
        },
    )
    return request, response_type(params, "RESULT")
