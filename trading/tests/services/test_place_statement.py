"""Order entry's one statement (``_place_in_one_statement``): it stores what Django's ORM
would, and it stays within what psycopg parses once per text (so it is not re-parsed for
every order)."""

from decimal import Decimal

import pytest
from django.db import connection
from psycopg import _queries

from exchange_site.db import insert_select
from trading import services
from trading.models import Order, OrderCommand

pytestmark = pytest.mark.django_db

D = Decimal


def _columns(order: Order) -> dict:
    row = Order.objects.filter(pk=order.pk).values().get()
    return {k: v for k, v in row.items() if k not in ("id", "created_at", "updated_at")}


@pytest.mark.parametrize(
    "fields",
    [
        {"order_type": "limit", "price": D("100.00"), "quantity": D("0.5")},
        {
            "order_type": "stop_limit",
            "price": D("101.00"),
            "stop_price": D("99.50"),
            "quantity": D("0.25"),
            "trailing_delta": 50,
        },
        {
            "order_type": "limit",
            "price": D("99.00"),
            "quantity": D("2"),
            "iceberg_quantity": D("0.5"),
            "client_order_id": "abc-1",
            "post_only": True,
        },
    ],
    ids=["limit", "trailing-stop-limit", "iceberg"],
)
def test_insert_select_stores_what_the_orm_stores(market, trader, fields):
    user = trader(market)
    values = {"user": user, "market": market, "side": "buy", "reserved": D("50"), **fields}
    saved = Order(**values)
    saved.save()
    inserted = Order(**{**values, "client_order_id": values.get("client_order_id") and "abc-2"})
    columns, select, params = insert_select(inserted)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO trading_order ({columns}) SELECT {select} RETURNING id", params
        )
        inserted.pk = cursor.fetchone()[0]

    stored, expected = _columns(inserted), _columns(saved)
    if fields.get("client_order_id"):
        assert stored.pop("client_order_id") == "abc-2"
        expected.pop("client_order_id")
    assert stored == expected
    assert None not in params


@pytest.mark.parametrize("order_type", ["limit", "stop_limit"])
def test_the_placing_statement_is_parsed_once_per_text(market, trader, order_type):
    user = trader(market, usd="1000")
    executed = []

    def spy(execute, sql, params, many, context):
        executed.append((sql, params))
        return execute(sql, params, many, context)

    fields = {"price": D("100"), "quantity": D("1")}
    if order_type == "stop_limit":
        fields["stop_price"] = D("99")
    with connection.execute_wrapper(spy):
        services.order_place(
            user=user,
            request=services.OrderRequest(
                symbol="BTC-USD", side="buy", order_type=order_type, **fields
            ),
        )

    (sql, params), *others = [(s, p) for s, p in executed if s.startswith("WITH bal")]
    assert not others
    # psycopg caches the parsing of a text only this short, with this few parameters.
    assert len(params) <= _queries.MAX_CACHED_STATEMENT_PARAMS
    assert len(sql) <= _queries.MAX_CACHED_STATEMENT_LENGTH
    assert OrderCommand.objects.filter(order__user=user).count() == 1
