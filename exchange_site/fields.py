"""Serializer fields for money: exact decimals in, decimal strings out (ARCHITECTURE §4)."""

import re
from decimal import Decimal, InvalidOperation

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exchange_site.decimals import decimal_to_str

MAX_NUMBER_TEXT = 64
# Plain ASCII decimal notation only: Decimal() itself also takes "1_000", "Infinity" and
# non-ASCII digits, none of which a client means as an amount.
NUMBER_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)


@extend_schema_field(
    {"type": "string", "format": "decimal", "example": "0.015", "pattern": r"^\d+(\.\d+)?$"}
)
class DecimalInputField(serializers.Field):
    """A positive, finite decimal given as a JSON string or number (never a float)."""

    default_error_messages = {
        "invalid": 'A number is required, as a string ("0.5") or a JSON number.',
        "not_finite": "A finite number is required.",
        "not_positive": "Must be greater than zero.",
        "too_long": f"At most {MAX_NUMBER_TEXT} characters.",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int | Decimal):
            self.fail("invalid")
        if isinstance(data, str):
            data = data.strip()
            if len(data) > MAX_NUMBER_TEXT:
                self.fail("too_long")
            if data.lower() in ("nan", "inf", "infinity", "+inf", "-inf", "-infinity"):
                self.fail("not_finite")
            if not NUMBER_TEXT.fullmatch(data):
                self.fail("invalid")
        try:
            value = Decimal(data)
        except (InvalidOperation, ValueError):
            self.fail("invalid")
        if not value.is_finite():
            self.fail("not_finite")
        if value <= 0:
            self.fail("not_positive")
        return value

    def to_representation(self, value):
        return decimal_to_str(value)


@extend_schema_field(OpenApiTypes.STR)
class AssetAmountField(serializers.Field):
    """A Decimal rendered as a string with at least its asset's decimal places ("10.50")."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        return super().get_attribute(instance), instance.asset.precision

    def to_representation(self, value):
        amount, places = value
        return decimal_to_str(amount, places)
