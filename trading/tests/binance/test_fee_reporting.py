"""The rates every surface reports are the ones the matcher charges (ARCHITECTURE §4 "Fees"):
``/api/v3/account`` ``commissionRates``, ``/api/v3/account/commission``, ``order/test`` with
``computeCommissionRates``, ``/sapi/v1/asset/tradeFee``, ``/api/v1/account/fees``, the
account page and CCXT's ``fetch_trading_fees``."""

from decimal import Decimal

import pytest
from django.test import Client
from rest_framework.test import APIClient

from trading.models import FeeProfile, FeeTier, Market, Order, Trade
from trading.tests.binance.test_sapi import default_ccxt, sapi
from trading.tests.binance.test_signing import assert_binance_error
from trading.tests.factories import MarketFactory
from trading.tests.helpers import assert_ledger_ok, drain, place, state
from wallets.tests.factories import AssetFactory

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def eth_btc(market):
    """ETH-BTC with a promotion: maker free, taker a quarter of the base tier's 0.2 %."""
    return MarketFactory(
        symbol="ETH-BTC",
        base_asset=AssetFactory(code="ETH", name="Ether", precision=18),
        quote_asset=market.base_asset,
        maker_fee=D("0"),
        taker_fee=D("0.0005"),
    )


@pytest.fixture
def vip(market, eth_btc, trader, binance_for):
    """A VIP 1 account by volume (maker 0.09 %, taker 0.16 %) with its own taker rate 0.1 %."""
    user = trader(market, usd="100000", btc="10")
    FeeProfile.objects.create(user=user, volume_30d=D("60000.5"), taker_fee_override=D("0.001"))
    client = binance_for(user)
    client.user = user
    return client


def test_account_commission_rates_are_the_accounts_own(vip):
    body = vip.signed("GET", "account").json()

    assert (body["makerCommission"], body["takerCommission"]) == (9, 10)
    assert body["commissionRates"] == {
        "maker": "0.00090000",
        "taker": "0.00100000",
        "buyer": "0.00000000",
        "seller": "0.00000000",
    }


def test_account_commission_and_trade_fee_are_per_market(vip, market, eth_btc):
    btc_usd = vip.signed("GET", "account/commission", {"symbol": "BTCUSD"})
    eth = vip.signed("GET", "account/commission", {"symbol": "ETHBTC"})
    fees = sapi(vip, "asset/tradeFee").json()

    assert btc_usd.status_code == 200, btc_usd.content
    assert btc_usd.json() == {
        "symbol": "BTCUSD",
        "standardCommission": {
            "maker": "0.00090000",
            "taker": "0.00100000",
            "buyer": "0.00000000",
            "seller": "0.00000000",
        },
        "specialCommission": {
            "maker": "0.00000000",
            "taker": "0.00000000",
            "buyer": "0.00000000",
            "seller": "0.00000000",
        },
        "taxCommission": {
            "maker": "0.00000000",
            "taker": "0.00000000",
            "buyer": "0.00000000",
            "seller": "0.00000000",
        },
        "discount": {
            "enabledForAccount": False,
            "enabledForSymbol": False,
            "discountAsset": "BNB",
            "discount": "0.00000000",
        },
    }
    # The promotion scales the account's own rates: taker 0.0005 × 0.001 / 0.002.
    assert eth.json()["standardCommission"]["maker"] == "0.00000000"
    assert eth.json()["standardCommission"]["taker"] == "0.00025000"
    assert fees == [
        {"symbol": "BTCUSD", "makerCommission": "0.00090000", "takerCommission": "0.00100000"},
        {"symbol": "ETHBTC", "makerCommission": "0.00000000", "takerCommission": "0.00025000"},
    ]


def test_account_commission_needs_a_known_symbol(vip):
    assert_binance_error(vip.signed("GET", "account/commission"), 400, -1102)
    assert_binance_error(vip.signed("GET", "account/commission", {"symbol": "DOGEUSD"}), 400, -1121)


def test_order_test_computes_the_commission_and_places_nothing(vip, market):
    before = state()
    response = vip.signed(
        "POST",
        "order/test",
        {
            "symbol": "BTCUSD",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": "100",
            "computeCommissionRates": "true",
        },
    )

    assert response.status_code == 200, response.content
    assert response.json()["standardCommissionForOrder"] == {
        "maker": "0.00090000",
        "taker": "0.00100000",
    }
    assert response.json()["taxCommissionForOrder"] == {
        "maker": "0.00000000",
        "taker": "0.00000000",
    }
    assert state() == before


def test_api_v1_account_fees(vip, market, eth_btc):
    client = APIClient()
    client.force_authenticate(vip.user)

    body = client.get("/api/v1/account/fees").json()

    assert body["reference_asset"] == "USD"
    assert body["volume_30d"] == "60000.50"
    assert body["tier"]["code"] == "vip1"
    assert body["tier_pinned"] is False
    assert (body["maker_fee"], body["taker_fee"]) == ("0.0009", "0.001")
    assert (body["maker_fee_overridden"], body["taker_fee_overridden"]) == (False, True)
    assert body["next_tier"]["code"] == "vip2"
    assert body["markets"] == [
        {"symbol": "BTC-USD", "maker_fee": "0.0009", "taker_fee": "0.001"},
        {"symbol": "ETH-BTC", "maker_fee": "0", "taker_fee": "0.00025"},
    ]
    assert [tier["code"] for tier in body["schedule"]] == ["regular", "vip1", "vip2", "vip3"]


def test_api_v1_account_fees_needs_a_login():
    assert APIClient().get("/api/v1/account/fees").status_code == 401


def test_the_account_page_shows_the_tier_and_each_markets_rates(vip, market, eth_btc):
    client = Client()
    client.force_login(vip.user)

    page = client.get("/accounts/profile/").content.decode()

    assert 'id="fee-tier">VIP 1<' in page
    assert "60000.50 USD" in page
    assert 'id="fee-maker">0.09 %<' in page
    assert 'id="fee-taker">0.1 % <span class="muted small">(your own rate)' in page
    assert "<td>ETH-BTC</td><td>0 %</td><td>0.025 %</td>" in page


def test_ccxt_fetch_trading_fees_matches_what_the_matcher_charges(vip, market, eth_btc, trader):
    ex, _adapter = default_ccxt(vip)
    ex.load_markets()
    reported = ex.fetch_trading_fees()
    seller = trader(market, btc="1")
    place(seller, side="sell", price="100", quantity="1")
    drain(market)
    place(vip.user, side="buy", price="100", quantity="1", order_type=Order.Type.LIMIT)
    drain(market)

    trade = Trade.objects.get()
    assert reported["BTC/USD"]["taker"] == 0.001
    assert reported["ETH/BTC"]["maker"] == 0.0
    assert trade.buyer_fee == D("1") * D(str(reported["BTC/USD"]["taker"]))
    assert trade.seller_fee == D("100") * D("0.001")  # the seller: regular maker
    assert_ledger_ok()


def test_a_tier_edit_shows_at_once_everywhere(vip, market):
    FeeTier.objects.filter(code="vip1").update(maker_fee=D("0.0008"))
    Market.objects.filter(pk=market.pk).update(maker_fee=D("0.0007"))

    assert vip.signed("GET", "account").json()["commissionRates"]["maker"] == "0.00080000"
    assert sapi(vip, "asset/tradeFee", {"symbol": "BTCUSD"}).json()[0]["makerCommission"] == (
        "0.00056000"  # the market's 0.0007 × 0.0008 / 0.001
    )


def test_the_trading_page_shows_the_accounts_rates_in_its_market(vip, market, eth_btc):
    client = Client()
    client.force_login(vip.user)

    page = client.get("/trade/ETH-BTC/").content.decode()

    # The promotion's rates scaled by the account's own: maker 0, taker 0.0005 × 0.001 / 0.002.
    assert '<span id="your-fees" title="maker / taker: your rates here">0 / 0.00025</span>' in page
