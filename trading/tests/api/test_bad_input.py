"""ARCHITECTURE §7 for order entry: bad input is a 4xx in the one error shape with a precise code,
never a 500, and creates nothing. Bodies are raw JSON: the exact bytes a client may send."""

import json

import pytest

from trading.tests.helpers import assert_error, state

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders"
TEN_KB = "7" * 10_000
VALID = {
    "symbol": "BTC-USD",
    "side": "buy",
    "order_type": "limit",
    "price": "100.00",
    "quantity": "0.5",
}


@pytest.fixture
def api(market, trader, client_for):
    return client_for(trader(market, usd="100000", btc="10"))


def post_raw(api, body: str):
    return api.post(ORDERS, data=body, content_type="application/json")


def with_raw(field: str, raw: str) -> str:
    """The valid order's JSON with ``field`` set to the raw JSON text ``raw``."""
    fields = {k: json.dumps(v) for k, v in VALID.items()}
    fields[field] = raw
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"


BAD_NUMBERS = [
    ('"NaN"', "VALIDATION_ERROR"),
    ('"nan"', "VALIDATION_ERROR"),
    ('"sNaN"', "VALIDATION_ERROR"),
    ('"Infinity"', "VALIDATION_ERROR"),
    ('"-inf"', "VALIDATION_ERROR"),
    ("NaN", "MALFORMED_REQUEST"),
    ("Infinity", "MALFORMED_REQUEST"),
    ("-Infinity", "MALFORMED_REQUEST"),
    ("1e400", "INVALID_NUMBER"),
    ('"1e400"', "INVALID_NUMBER"),
    ('"1e1000000"', "INVALID_NUMBER"),
    ("1" + "0" * 5000, "MALFORMED_REQUEST"),  # beyond Python's int-parsing limit
    ('"1e-30"', "INVALID_NUMBER"),
    ('"abc"', "VALIDATION_ERROR"),
    ('""', "VALIDATION_ERROR"),
    ('"   "', "VALIDATION_ERROR"),
    ('"1,5"', "VALIDATION_ERROR"),
    ('"1.2.3"', "VALIDATION_ERROR"),
    ('"0x10"', "VALIDATION_ERROR"),
    (f'"{TEN_KB}"', "VALIDATION_ERROR"),
    (f'"0.{TEN_KB}"', "VALIDATION_ERROR"),
    ('"-1"', "VALIDATION_ERROR"),
    ("-1", "VALIDATION_ERROR"),
    ("0", "VALIDATION_ERROR"),
    ('"0.0"', "VALIDATION_ERROR"),
    ("true", "VALIDATION_ERROR"),
    ("null", "VALIDATION_ERROR"),
    ("[1]", "VALIDATION_ERROR"),
    ('{"value": "1"}', "VALIDATION_ERROR"),
]


@pytest.mark.parametrize("field", ["price", "quantity"])
@pytest.mark.parametrize(("raw", "code"), BAD_NUMBERS, ids=[raw[:30] for raw, _ in BAD_NUMBERS])
def test_a_bad_number_is_a_400_and_creates_nothing(api, field, raw, code):
    before = state()

    response = post_raw(api, with_raw(field, raw))

    assert_error(response, 400, code)
    assert state() == before


BAD_FIELDS = [
    ("symbol", json.dumps(TEN_KB), "VALIDATION_ERROR"),
    ("symbol", "123", "UNKNOWN_SYMBOL"),
    ("symbol", '""', "VALIDATION_ERROR"),
    ("symbol", "null", "VALIDATION_ERROR"),
    ("symbol", '"BTC-USD\\u0000"', "VALIDATION_ERROR"),
    ("symbol", '"DOGE-USD"', "UNKNOWN_SYMBOL"),
    ("side", '"hold"', "VALIDATION_ERROR"),
    ("side", json.dumps(TEN_KB), "VALIDATION_ERROR"),
    ("order_type", '"iceberg"', "VALIDATION_ERROR"),
    ("time_in_force", '"GTD"', "VALIDATION_ERROR"),
    ("post_only", '"maybe"', "VALIDATION_ERROR"),
    ("client_order_id", json.dumps(TEN_KB), "VALIDATION_ERROR"),
    ("client_order_id", '""', "VALIDATION_ERROR"),
    ("client_order_id", '"has space"', "VALIDATION_ERROR"),
    ("client_order_id", json.dumps("x" * 37), "VALIDATION_ERROR"),
]


@pytest.mark.parametrize(
    ("field", "raw", "code"), BAD_FIELDS, ids=[f"{f}:{r[:20]}" for f, r, _ in BAD_FIELDS]
)
def test_a_bad_field_is_a_400_and_creates_nothing(api, field, raw, code):
    before = state()

    response = post_raw(api, with_raw(field, raw))

    assert_error(response, 400, code)
    assert state() == before


@pytest.mark.parametrize(
    "body", ["{", '{"price": }', "[]", '"order"', "123", "null", "", TEN_KB, "{" * 10_000]
)
def test_a_body_that_is_not_an_order_object_is_a_400(api, body):
    before = state()

    response = post_raw(api, body)

    assert response.status_code == 400, response.content
    assert set(response.json()) == {"error"}
    assert state() == before


RULE_BREAKS = [
    ({"price": "100.001"}, "INVALID_PRICE_TICK"),
    ({"quantity": "0.000001"}, "INVALID_QUANTITY_STEP"),
    ({"quantity": "0.00001"}, "MIN_NOTIONAL"),
    ({"quantity": "1000.00001"}, "QUANTITY_TOO_LARGE"),
    ({"symbol": "ETH-USD"}, "UNKNOWN_SYMBOL"),
    ({"price": None}, "MISSING_FIELD"),
    ({"stop_price": "90"}, "UNEXPECTED_FIELD"),
    ({"quote_quantity": "90"}, "UNEXPECTED_FIELD"),
    ({"order_type": "market"}, "UNEXPECTED_FIELD"),
    ({"order_type": "market", "price": None, "quantity": None}, "MISSING_FIELD"),
    ({"order_type": "stop", "price": None}, "MISSING_FIELD"),
    ({"order_type": "stop_limit", "stop_price": "99", "quantity": None}, "MISSING_FIELD"),
    ({"post_only": True, "order_type": "stop_limit", "stop_price": "99"}, "INVALID_POST_ONLY"),
]


@pytest.mark.parametrize(("changes", "code"), RULE_BREAKS)
def test_an_order_breaking_a_rule_is_a_400_with_its_code(api, changes, code):
    body = {**VALID, **changes}
    body = {k: v for k, v in body.items() if v is not None}
    before = state()

    response = api.post(ORDERS, body, format="json")

    error = assert_error(response, 400, code)
    assert state() == before
    if code == "INVALID_PRICE_TICK":
        assert error["details"] == {"field": "price", "step": "0.01"}


def test_a_quantity_under_the_minimum_is_a_400(api, market):
    market.min_qty = market.lot_size * 100
    market.save()
    before = state()

    response = api.post(ORDERS, {**VALID, "quantity": "0.00099"}, format="json")

    error = assert_error(response, 400, "QUANTITY_TOO_SMALL")
    assert error["details"] == {"min_qty": "0.001"}
    assert state() == before


@pytest.mark.parametrize("path", ["/api/v1/orders/abc", "/api/v1/orders/1.5", "/api/v1/orders/-1"])
def test_a_malformed_order_id_is_a_404_in_the_error_shape(api, path):
    response = api.get(path)

    assert response.status_code == 404
    assert set(response.json()) == {"error"}


def test_a_bad_page_is_a_404_not_a_500(api):
    assert api.get(f"{ORDERS}?page=abc").status_code == 404
    assert api.get(f"{ORDERS}?page=99").status_code == 404
    assert api.get(f"{ORDERS}?page_size=abc").status_code == 200
