"""A value PostgreSQL cannot store (a NUL character) is a 4xx everywhere, never a 500."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_nul_in_a_symbol_of_a_url_is_a_404_not_a_500(auth_client):
    response = auth_client.get("/api/v1/market/BTC%00USD/ticker")
    assert response.status_code == 404


def test_a_nul_in_a_query_filter_is_a_4xx(auth_client):
    response = auth_client.get("/api/v1/orders/?symbol=BTC%00-USD")
    assert 400 <= response.status_code < 500


def test_a_value_the_database_refuses_is_invalid_input_in_the_error_shape(user):
    from django.db import DataError
    from rest_framework.response import Response

    from accounts.models import User
    from exchange_site.exception_handler import exchange_exception_handler

    try:
        User.objects.filter(username="a\x00b").exists()
    except DataError as exc:
        raised = exc
    response = exchange_exception_handler(raised, {})
    assert isinstance(response, Response)
    assert response.status_code == 400
    assert response.data["error"]["code"] == "INVALID_INPUT"


def test_the_trade_page_of_a_symbol_with_a_nul_is_a_404(client):
    response = client.get("/trade/BTC%00USD/")
    assert response.status_code == 404
