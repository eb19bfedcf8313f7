"""The candle admin lists candles and changes nothing."""

from datetime import UTC, datetime

import pytest

from accounts.tests.factories import UserFactory
from marketdata.services import candles_apply_trades
from marketdata.tests.fixtures import fake_trade
from trading.tests.factories import MarketFactory

pytestmark = pytest.mark.django_db


def test_candle_admin_lists_candles_read_only(client):
    market = MarketFactory()
    candles_apply_trades(
        market_id=market.pk,
        trades=[fake_trade(market, "100", "1", datetime(2024, 5, 1, tzinfo=UTC))],
    )
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    listing = client.get("/admin/marketdata/candle/?interval=1m")
    adding = client.get("/admin/marketdata/candle/add/")

    assert listing.status_code == 200
    assert b"BTC-USD" in listing.content
    assert adding.status_code == 403
