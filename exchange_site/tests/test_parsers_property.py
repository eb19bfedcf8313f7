"""Property tests of everything that turns client text into an amount.

Whatever arrives (any text, number, JSON document or byte string), a parser either returns
an exact ``Decimal`` or refuses with a validation error; it never raises anything else and
never lets a binary float through. Valid decimals come back exactly as written.
"""

import io
import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework import serializers
from rest_framework.exceptions import ParseError

from exchange_site.fields import MAX_NUMBER_TEXT, DecimalInputField
from exchange_site.parsers import DecimalJSONParser
from trading.api.serializers import OrderPlaceInputSerializer
from wallets.models import Asset
from wallets.services import amount_validate

PROPERTY_SETTINGS = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Anything a JSON body or a form can carry, and a few things it cannot.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.decimals(),
    st.text(),
)
anything = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Text that looks like a number, often enough to reach the numeric branches.
numberish_text = st.one_of(
    st.from_regex(r"\A\s*[+-]?\d{0,30}(\.\d{0,30})?([eE][+-]?\d{1,12})?\s*\Z"),
    st.sampled_from(
        ["NaN", "-inf", "Infinity", "sNaN", "1_000", "١٢", "0x10", "1e", ".", "-0", "0.0", " 1 "]
    ),
    st.text(max_size=80),
)
# Positive finite decimals as a client would write them.
positive_decimals = st.decimals(
    min_value=Decimal("1e-18"), max_value=Decimal("1e18"), allow_nan=False, allow_infinity=False
)


def _refused_by_field(value) -> bool:
    try:
        DecimalInputField().to_internal_value(value)
    except serializers.ValidationError:
        return True
    return False


# --- DecimalInputField -------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(st.one_of(anything, numberish_text))
def test_decimal_field_returns_a_positive_decimal_or_a_validation_error(value):
    try:
        result = DecimalInputField().to_internal_value(value)
    except serializers.ValidationError:
        return
    assert type(result) is Decimal
    assert result.is_finite()
    assert result > 0


@PROPERTY_SETTINGS
@given(st.floats())
def test_decimal_field_refuses_every_float(value):
    # A float has already lost the client's digits; only strings and JSON numbers parsed
    # as Decimal are amounts.
    assert _refused_by_field(value)


@PROPERTY_SETTINGS
@given(positive_decimals)
def test_decimal_field_round_trips_valid_decimals_exactly(value):
    for written in (str(value), format(value, "f")):
        if len(written) > MAX_NUMBER_TEXT:
            continue
        result = DecimalInputField().to_internal_value(written)
        assert result == value
        assert result.as_tuple() == Decimal(written).as_tuple()
        assert Decimal(DecimalInputField().to_representation(result)) == value
    assert DecimalInputField().to_internal_value(value) == value


@PROPERTY_SETTINGS
@given(st.integers(min_value=1))
def test_decimal_field_takes_positive_integers_exactly(value):
    assert DecimalInputField().to_internal_value(value) == Decimal(value)


@pytest.mark.parametrize("text", ["0.1", "0.30000000000000004", "1e-18", "123456789.123456789"])
def test_decimal_field_keeps_every_written_digit(text):
    assert str(DecimalInputField().to_internal_value(text)) == str(Decimal(text))


# --- DecimalJSONParser -------------------------------------------------------------------


def _parse(raw: bytes):
    return DecimalJSONParser().parse(io.BytesIO(raw), "application/json", {"encoding": "utf-8"})


def _floats_in(value) -> list:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [found for item in value for found in _floats_in(item)]
    return []


@PROPERTY_SETTINGS
@given(st.binary(max_size=200))
def test_json_parser_takes_any_bytes_or_raises_parse_error(raw):
    try:
        parsed = _parse(raw)
    except ParseError:
        return
    assert not _floats_in(parsed)


@PROPERTY_SETTINGS
@given(anything)
def test_json_parser_never_produces_a_float(document):
    try:
        raw = json.dumps(document, default=str).encode()
    except ValueError:
        return
    try:
        parsed = _parse(raw)
    except ParseError:
        # Only NaN and ±Infinity (which json.dumps writes for such floats) are refused.
        assert b"NaN" in raw or b"Infinity" in raw
        return
    assert not _floats_in(parsed)


@PROPERTY_SETTINGS
@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_json_parser_keeps_json_numbers_exact(value):
    # Written the way a client's JSON library writes a number (no quotes).
    literal = format(value, "f") if "." in format(value, "f") else format(value, "f") + ".0"
    parsed = _parse(b'{"amount": ' + literal.encode() + b"}")
    assert type(parsed["amount"]) is Decimal
    assert parsed["amount"] == value


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_json_parser_refuses_non_finite_constants(constant):
    with pytest.raises(ParseError):
        _parse(b'{"amount": ' + constant + b"}")


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_json_parser_refuses_a_deeply_nested_document(opener):
    # Regression: the stdlib decoder's RecursionError escaped as a 500.
    with pytest.raises(ParseError):
        _parse(opener * 100_000)


@pytest.mark.django_db
def test_deeply_nested_json_is_a_400_not_a_500(auth_client):
    response = auth_client.post("/api/v1/orders/", b"[" * 100_000, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MALFORMED_REQUEST"


# --- OrderPlaceInputSerializer ----------------------------------------------------------

ORDER_FIELDS = [
    "symbol",
    "side",
    "order_type",
    "quantity",
    "price",
    "stop_price",
    "quote_quantity",
    "time_in_force",
    "post_only",
    "client_order_id",
]
DECIMAL_FIELDS = ("quantity", "price", "stop_price", "quote_quantity")


@PROPERTY_SETTINGS
@given(
    st.one_of(
        anything,
        st.dictionaries(st.sampled_from(ORDER_FIELDS), st.one_of(anything, numberish_text)),
    )
)
def test_order_serializer_validates_or_reports_errors(data):
    serializer = OrderPlaceInputSerializer(data=data)
    if serializer.is_valid():
        for field in DECIMAL_FIELDS:
            value = serializer.validated_data.get(field)
            assert value is None or (type(value) is Decimal and value > 0)
    else:
        assert serializer.errors


@PROPERTY_SETTINGS
@given(
    quantity=positive_decimals,
    price=positive_decimals,
    side=st.sampled_from(["buy", "sell"]),
    as_string=st.booleans(),
)
def test_order_serializer_keeps_valid_decimals_exact(quantity, price, side, as_string):
    def written(value):
        return format(value, "f") if as_string else value

    if as_string and max(len(format(quantity, "f")), len(format(price, "f"))) > MAX_NUMBER_TEXT:
        return
    serializer = OrderPlaceInputSerializer(
        data={
            "symbol": "BTC-USD",
            "side": side,
            "quantity": written(quantity),
            "price": written(price),
        }
    )

    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["quantity"] == quantity
    assert serializer.validated_data["price"] == price


# --- wallets amount_validate ------------------------------------------------------------

ASSETS = [
    Asset(code="BTC", precision=8),
    Asset(code="USD", precision=2),
    Asset(code="SOL", precision=6),
]
amounts = st.one_of(
    st.decimals(),
    st.decimals(allow_nan=True, allow_infinity=True, places=30),
    st.builds(Decimal, numberish_text.filter(lambda text: _is_decimal(text))),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.none(),
)


def _is_decimal(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


@PROPERTY_SETTINGS
@given(asset=st.sampled_from(ASSETS), amount=amounts)
def test_amount_validate_returns_an_amount_or_a_validation_error(asset, amount):
    try:
        result = amount_validate(asset=asset, amount=amount)
    except DjangoValidationError as exc:
        refused_fields = set(exc.message_dict)
    else:
        refused_fields = None
    if refused_fields is not None:
        assert refused_fields == {"amount"}
        return
    assert type(result) is Decimal
    assert result == amount
    assert result > 0
    assert result == result.quantize(asset.quantum)


@PROPERTY_SETTINGS
@given(
    asset=st.sampled_from(ASSETS), units=st.integers(min_value=1, max_value=10**17), data=st.data()
)
def test_amount_validate_keeps_amounts_on_the_asset_grid(asset, units, data):
    amount = Decimal(units).scaleb(-data.draw(st.integers(0, asset.precision)))

    assert amount_validate(asset=asset, amount=amount) == amount


@PROPERTY_SETTINGS
@given(asset=st.sampled_from(ASSETS), units=st.integers(min_value=1, max_value=10**17))
def test_amount_validate_refuses_digits_past_the_asset_precision(asset, units):
    amount = Decimal(units).scaleb(-asset.precision) + Decimal(1).scaleb(-asset.precision - 1)

    with pytest.raises(DjangoValidationError):
        amount_validate(asset=asset, amount=amount)
