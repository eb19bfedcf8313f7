from rest_framework import serializers

from exchange_site.decimals import decimal_places, decimal_to_str
from exchange_site.fields import DecimalInputField
from trading.models import Order, OrderList, Trade
from trading.services import CANCEL_REPLACE_MODES

CLIENT_ORDER_ID_PATTERN = r"^[A-Za-z0-9._:/-]{1,36}$"


class OrderPlaceInputSerializer(serializers.Serializer):
    symbol = serializers.CharField(max_length=30, help_text="BTC-USD, BTC/USD or BTC_USD.")
    side = serializers.ChoiceField(choices=Order.Side.choices)
    order_type = serializers.ChoiceField(choices=Order.Type.choices, default=Order.Type.LIMIT)
    quantity = DecimalInputField(required=False, help_text="In the base asset.")
    price = DecimalInputField(required=False, help_text="Limit price, in the quote asset.")
    stop_price = DecimalInputField(required=False, help_text="Trigger price of stop orders.")
    quote_quantity = DecimalInputField(
        required=False, help_text="Market buys: spend exactly this much of the quote asset."
    )
    time_in_force = serializers.ChoiceField(
        choices=Order.TimeInForce.choices, default=Order.TimeInForce.GTC
    )
    post_only = serializers.BooleanField(default=False)
    client_order_id = serializers.RegexField(
        CLIENT_ORDER_ID_PATTERN,
        required=False,
        allow_null=True,
        help_text="Your id for the order (1–36 of A-Z a-z 0-9 . _ : / -); a retry with "
        "the same id returns the first order.",
    )
    iceberg_quantity = DecimalInputField(
        required=False,
        help_text="Iceberg (GTC limit orders): show only this much of the order at a time.",
    )
    trailing_delta = serializers.IntegerField(
        required=False,
        help_text="Trailing stop (stop, stop_limit): trigger this many basis points (10–2000) "
        "past the best price since activation; stop_price is then the optional activation "
        "price.",
    )


class OrderReplaceInputSerializer(OrderPlaceInputSerializer):
    """The new order of a cancel-replace: an order (symbol defaults to the cancelled
    order's) and the ``mode``."""

    symbol = serializers.CharField(
        max_length=30, required=False, help_text="Defaults to the cancelled order's market."
    )
    mode = serializers.ChoiceField(
        choices=CANCEL_REPLACE_MODES,
        default="STOP_ON_FAILURE",
        help_text="STOP_ON_FAILURE: place only if the cancel succeeded; ALLOW_FAILURE: "
        "place either way.",
    )


class OrderAmendInputSerializer(serializers.Serializer):
    quantity = DecimalInputField(
        help_text="The new total quantity: less than the current one, more than the filled."
    )


class OcoPlaceInputSerializer(serializers.Serializer):
    symbol = serializers.CharField(max_length=30, help_text="BTC-USD, BTC/USD or BTC_USD.")
    side = serializers.ChoiceField(choices=Order.Side.choices)
    quantity = DecimalInputField(help_text="Of each leg, in the base asset.")
    limit_price = DecimalInputField(help_text="The limit leg's price (a post-only order).")
    stop_price = DecimalInputField(
        required=False, help_text="The stop leg's trigger (with trailing_delta: activation)."
    )
    stop_limit_price = DecimalInputField(
        required=False, help_text="Makes the stop leg a stop-limit order at this price."
    )
    stop_time_in_force = serializers.ChoiceField(
        choices=Order.TimeInForce.choices,
        default=Order.TimeInForce.GTC,
        help_text="The stop-limit leg's time in force.",
    )
    trailing_delta = serializers.IntegerField(
        required=False, help_text="Makes the stop leg a trailing stop (basis points, 10–2000)."
    )
    limit_iceberg_quantity = DecimalInputField(
        required=False, help_text="Makes the limit leg an iceberg showing this much."
    )
    list_client_id = serializers.RegexField(
        CLIENT_ORDER_ID_PATTERN,
        required=False,
        allow_null=True,
        help_text="Your id for the list; a retry with the same id returns the first list.",
    )
    limit_client_order_id = serializers.RegexField(
        CLIENT_ORDER_ID_PATTERN, required=False, allow_null=True
    )
    stop_client_order_id = serializers.RegexField(
        CLIENT_ORDER_ID_PATTERN, required=False, allow_null=True
    )


class OrderBatchInputSerializer(serializers.Serializer):
    orders = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=20)


def _market_places(order_or_trade):
    market = order_or_trade.market
    # Minimum places shown: the price and quantity grids, and the quote asset's precision
    # (a notional keeps any finer digits it really has).
    return (
        decimal_places(market.tick_size),
        decimal_places(market.lot_size),
        market.quote_asset.precision,
    )


def _fmt(value, places):
    return None if value is None else decimal_to_str(value, places)


_datetime = serializers.DateTimeField()


def order_output(order: Order) -> dict:
    """An order as the API shows it: what ``OrderOutputSerializer`` renders, built directly.

    Order entry renders one order per request; DRF's field-by-field machinery (eight method
    fields each recomputing the market's places) cost more than the order's transaction.
    """
    price_places, qty_places, quote_places = _market_places(order)
    average = order.average_price
    return {
        "id": order.pk,
        "client_order_id": order.client_order_id,
        "symbol": order.market.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "time_in_force": order.time_in_force,
        "post_only": order.post_only,
        "status": order.status,
        "price": _fmt(order.price, price_places),
        "stop_price": _fmt(order.stop_price, price_places),
        "quantity": _fmt(order.quantity, qty_places),
        "quote_quantity": _fmt(order.quote_quantity, quote_places),
        "filled_quantity": _fmt(order.filled_quantity, qty_places),
        "filled_quote": _fmt(order.filled_quote, quote_places),
        "average_price": (
            None
            if average is None
            else _fmt(average.quantize(order.market.tick_size), price_places)
        ),
        "fee": decimal_to_str(order.fee_total),
        "reason": order.reason,
        "iceberg_quantity": _fmt(order.iceberg_quantity, qty_places),
        "trailing_delta": order.trailing_delta,
        "trailing_peak": _fmt(order.trailing_peak, price_places),
        "order_list_id": order.order_list_id,
        "created_at": _datetime.to_representation(order.created_at),
        "updated_at": _datetime.to_representation(order.updated_at),
    }


class OrderOutputSerializer(serializers.ModelSerializer):
    """The schema of an order; ``to_representation`` is ``order_output``."""

    symbol = serializers.CharField(source="market.symbol")

    class Meta:
        model = Order
        fields = [
            "id",
            "client_order_id",
            "symbol",
            "side",
            "order_type",
            "time_in_force",
            "post_only",
            "status",
            "price",
            "stop_price",
            "quantity",
            "quote_quantity",
            "filled_quantity",
            "filled_quote",
            "average_price",
            "fee",
            "reason",
            "iceberg_quantity",
            "trailing_delta",
            "trailing_peak",
            "order_list_id",
            "created_at",
            "updated_at",
        ]

    price = serializers.SerializerMethodField()
    stop_price = serializers.SerializerMethodField()
    quantity = serializers.SerializerMethodField()
    quote_quantity = serializers.SerializerMethodField()
    filled_quantity = serializers.SerializerMethodField()
    filled_quote = serializers.SerializerMethodField()
    average_price = serializers.SerializerMethodField()
    fee = serializers.SerializerMethodField(help_text="Fees paid, in the asset received.")
    iceberg_quantity = serializers.SerializerMethodField()
    trailing_peak = serializers.SerializerMethodField(
        help_text="Trailing stops: the extreme last price since activation (null: not active)."
    )
    order_list_id = serializers.IntegerField(
        allow_null=True, help_text="The OCO list this order is a leg of."
    )

    def get_iceberg_quantity(self, order) -> str | None:
        return _fmt(order.iceberg_quantity, _market_places(order)[1])

    def get_trailing_peak(self, order) -> str | None:
        return _fmt(order.trailing_peak, _market_places(order)[0])

    def get_price(self, order) -> str | None:
        return _fmt(order.price, _market_places(order)[0])

    def get_stop_price(self, order) -> str | None:
        return _fmt(order.stop_price, _market_places(order)[0])

    def get_quantity(self, order) -> str | None:
        return _fmt(order.quantity, _market_places(order)[1])

    def get_quote_quantity(self, order) -> str | None:
        return _fmt(order.quote_quantity, _market_places(order)[2])

    def get_filled_quantity(self, order) -> str:
        return _fmt(order.filled_quantity, _market_places(order)[1])

    def get_filled_quote(self, order) -> str:
        return _fmt(order.filled_quote, _market_places(order)[2])

    def get_average_price(self, order) -> str | None:
        average = order.average_price
        if average is None:
            return None
        return _fmt(average.quantize(order.market.tick_size), _market_places(order)[0])

    def get_fee(self, order) -> str:
        return decimal_to_str(order.fee_total)

    def to_representation(self, instance):
        return order_output(instance)


def _pk(instance) -> int:
    return instance.pk


def order_list_output(order_list: OrderList) -> dict:
    """An OCO list with its legs (limit leg first)."""
    return {
        "id": order_list.pk,
        "list_client_id": order_list.client_list_id,
        "symbol": order_list.market.symbol,
        "kind": order_list.kind,
        "status": order_list.status,
        "orders": [order_output(order) for order in sorted(order_list.orders.all(), key=_pk)],
        "created_at": _datetime.to_representation(order_list.created_at),
        "updated_at": _datetime.to_representation(order_list.updated_at),
    }


class OrderListOutputSerializer(serializers.ModelSerializer):
    """The schema of an order list; ``to_representation`` is ``order_list_output``."""

    symbol = serializers.CharField(source="market.symbol")
    list_client_id = serializers.CharField(source="client_list_id", allow_null=True)
    orders = OrderOutputSerializer(many=True)

    class Meta:
        model = OrderList
        fields = [
            "id",
            "list_client_id",
            "symbol",
            "kind",
            "status",
            "orders",
            "created_at",
            "updated_at",
        ]

    def to_representation(self, instance):
        return order_list_output(instance)


class TradeOutputSerializer(serializers.ModelSerializer):
    """One of the caller's fills, seen from the caller's side."""

    symbol = serializers.CharField(source="market.symbol")
    order_id = serializers.SerializerMethodField()
    side = serializers.SerializerMethodField()
    price = serializers.SerializerMethodField()
    quantity = serializers.SerializerMethodField()
    quote_quantity = serializers.SerializerMethodField()
    fee = serializers.SerializerMethodField()
    fee_asset = serializers.SerializerMethodField()
    is_maker = serializers.SerializerMethodField()

    class Meta:
        model = Trade
        fields = [
            "id",
            "symbol",
            "order_id",
            "side",
            "price",
            "quantity",
            "quote_quantity",
            "fee",
            "fee_asset",
            "is_maker",
            "created_at",
        ]

    def _is_buyer(self, trade) -> bool:
        return trade.buyer_id == self.context["request"].user.pk

    def get_order_id(self, trade) -> int:
        return trade.buy_order_id if self._is_buyer(trade) else trade.sell_order_id

    def get_side(self, trade) -> str:
        return Order.Side.BUY if self._is_buyer(trade) else Order.Side.SELL

    def get_price(self, trade) -> str:
        return _fmt(trade.price, _market_places(trade)[0])

    def get_quantity(self, trade) -> str:
        return _fmt(trade.quantity, _market_places(trade)[1])

    def get_quote_quantity(self, trade) -> str:
        return _fmt(trade.quote_quantity, _market_places(trade)[2])

    def get_fee(self, trade) -> str:
        return decimal_to_str(trade.buyer_fee if self._is_buyer(trade) else trade.seller_fee)

    def get_fee_asset(self, trade) -> str:
        market = trade.market
        return market.base_asset.code if self._is_buyer(trade) else market.quote_asset.code

    def get_is_maker(self, trade) -> bool:
        return (trade.taker_side == Order.Side.BUY) != self._is_buyer(trade)
