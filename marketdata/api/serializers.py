"""Query parameters in, and the shapes of the public market-data responses.

The output serializers document the responses for OpenAPI; the selectors build the data
itself (decimal strings, unix-millisecond times) so the hot endpoints skip a DRF pass per
row.
"""

import re
from datetime import UTC, datetime, timedelta

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from marketdata.models import INTERVAL_SECONDS, Candle
from marketdata.selectors import ORDERBOOK_MAX_DEPTH
from trading.models import Market

MAX_LIMIT = 1000
_MILLIS = re.compile(r"\d{1,15}", re.ASCII)
# "+01:00" arrives as " 01:00" when a client forgets to URL-encode the "+".
_UNENCODED_OFFSET = re.compile(r"(T[0-9:.]+) (\d\d:?\d\d)$")


@extend_schema_field(
    {
        "type": "string",
        "description": "ISO 8601 (`2024-05-01T12:00:00Z`; no offset means UTC) "
        "or unix milliseconds (`1714564800000`).",
        "example": "2024-05-01T12:00:00Z",
    }
)
class TimeParamField(serializers.Field):
    """A moment given as ISO 8601 or unix milliseconds; an aware UTC datetime inside."""

    default_error_messages = {
        "invalid": "Give ISO 8601 (2024-05-01T12:00:00Z) or unix milliseconds.",
        "range": "Out of range.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str) or len(data) > 40:
            self.fail("invalid")
        data = data.strip()
        if _MILLIS.fullmatch(data):
            try:
                return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(data))
            except OverflowError:
                self.fail("range")
        try:
            moment = parse_datetime(_UNENCODED_OFFSET.sub(r"\1+\2", data))
        except ValueError:
            self.fail("range")
        if moment is None:
            self.fail("invalid")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            self.fail("range")

    def to_representation(self, value):
        return value.isoformat()


class OrderBookQuerySerializer(serializers.Serializer):
    depth = serializers.IntegerField(
        min_value=1,
        max_value=ORDERBOOK_MAX_DEPTH,
        default=20,
        help_text=f"Levels per side, 1..{ORDERBOOK_MAX_DEPTH}.",
    )


class TradeListQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, default=50, help_text=f"1..{MAX_LIMIT}."
    )


class CandleListQuerySerializer(serializers.Serializer):
    interval = serializers.ChoiceField(choices=list(INTERVAL_SECONDS), default=Candle.Interval.M1)
    start = TimeParamField(required=False, help_text="First open time included.")
    end = TimeParamField(required=False, help_text="Last open time included.")
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, default=500, help_text=f"1..{MAX_LIMIT}."
    )

    def validate(self, attrs):
        start, end = attrs.get("start"), attrs.get("end")
        if start is not None and end is not None and start > end:
            raise serializers.ValidationError("start must not be after end.")
        return attrs


# --- responses -------------------------------------------------------------------------------

_DECIMAL = {"type": "string", "format": "decimal", "example": "50000.00"}
_OPTIONAL_DECIMAL = {**_DECIMAL, "nullable": True}


@extend_schema_field(_DECIMAL)
class DecimalTextField(serializers.CharField):
    pass


@extend_schema_field(_OPTIONAL_DECIMAL)
class OptionalDecimalTextField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(allow_null=True, **kwargs)


@extend_schema_field(
    {
        "type": "array",
        "description": "Levels `[price, total_qty, order_count]`, best first.",
        "items": {
            "type": "array",
            "minItems": 3,
            "maxItems": 3,
            "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "example": [["50000.00", "1.50000", 3]],
    }
)
class LevelsField(serializers.ListField):
    pass


@extend_schema_field(
    # Not an enum: the choice set is Order.Side's, and a second enum name for it makes
    # drf-spectacular warn.
    {"type": "string", "pattern": "^(buy|sell)$", "description": "The incoming order's side."}
)
class TakerSideField(serializers.CharField):
    pass


class MarketOutputSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    status = serializers.ChoiceField(choices=Market.Status.choices)
    base_asset = serializers.CharField()
    base_precision = serializers.IntegerField()
    quote_asset = serializers.CharField()
    quote_precision = serializers.IntegerField()
    tick_size = DecimalTextField()
    lot_size = DecimalTextField()
    min_qty = DecimalTextField()
    max_qty = DecimalTextField()
    min_notional = DecimalTextField()
    maker_fee = DecimalTextField(help_text="A rate: 0.001 is 0.1 %.")
    taker_fee = DecimalTextField()
    last_price = OptionalDecimalTextField()


class OrderBookOutputSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    seq = serializers.IntegerField(help_text="The book sequence number these levels reflect.")
    bids = LevelsField()
    asks = LevelsField()
    timestamp = serializers.DateTimeField(help_text="When the levels were taken.")


class PublicTradeOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    price = DecimalTextField()
    quantity = DecimalTextField()
    quote_quantity = DecimalTextField()
    taker_side = TakerSideField()
    time = serializers.IntegerField(help_text="Unix milliseconds.")


class TickerOutputSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    open = OptionalDecimalTextField(help_text="First price of the 24 h window.")
    high = OptionalDecimalTextField()
    low = OptionalDecimalTextField()
    last = OptionalDecimalTextField()
    change = OptionalDecimalTextField(help_text="last - open.")
    change_percent = OptionalDecimalTextField()
    volume = DecimalTextField(help_text="In the base asset.")
    quote_volume = DecimalTextField(help_text="In the quote asset.")
    trade_count = serializers.IntegerField()
    best_bid = OptionalDecimalTextField()
    best_bid_quantity = OptionalDecimalTextField()
    best_ask = OptionalDecimalTextField()
    best_ask_quantity = OptionalDecimalTextField()
    open_time = serializers.IntegerField(help_text="Window start, unix milliseconds.")
    close_time = serializers.IntegerField(help_text="Window end, unix milliseconds.")


class CandleOutputSerializer(serializers.Serializer):
    open_time = serializers.IntegerField(help_text="Bucket start, unix milliseconds (UTC).")
    open = DecimalTextField()
    high = DecimalTextField()
    low = DecimalTextField()
    close = DecimalTextField()
    volume = DecimalTextField()
    quote_volume = DecimalTextField()
    trade_count = serializers.IntegerField()
