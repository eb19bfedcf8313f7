"""``/sapi/v1/system/status`` and ``/sapi/v1/fiat/orders``: what CCXT's ``fetch_status`` and,
for the currencies it calls legal money (USD, ...), ``fetch_deposits`` / ``fetch_withdrawals``
ask with their default options."""

from decimal import Decimal

import pytest

from accounts.tests.factories import UserFactory
from trading.models import Market
from trading.tests.binance.conftest import ccxt_unpaced
from trading.tests.binance.test_sapi import default_ccxt, sapi
from trading.tests.binance.test_signing import assert_binance_error
from wallets.chain import withdrawal_process
from wallets.services import withdrawal_approve
from wallets.tests.helpers import withdrawal_request_confirmed

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def alice(market, trader, binance_for):
    user = trader(market, usd="1000", btc="2")
    client = binance_for(user)
    client.user = user
    return client


def test_system_status_is_normal_until_every_market_is_halted(public_client, market, alice):
    assert public_client.client.get("/sapi/v1/system/status").json() == {
        "status": 0,
        "msg": "normal",
    }
    Market.objects.update(status=Market.Status.HALTED)
    assert public_client.client.get("/sapi/v1/system/status").json() == {
        "status": 1,
        "msg": "system_maintenance",
    }
    ex, _adapter = default_ccxt(alice)
    assert ex.fetch_status()["status"] == "maintenance"


def test_fiat_orders_list_the_legal_money_deposits_and_withdrawals(alice, market):
    withdrawal = withdrawal_request_confirmed(
        user=alice.user, asset_code="USD", amount=D("100"), address="usd-out"
    )
    withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=UserFactory(is_staff=True))
    withdrawal_process(withdrawal_id=withdrawal.pk)
    deposit = alice.user.deposit_set.get(asset__code="USD")

    deposits = sapi(alice, "fiat/orders", {"transactionType": 0}).json()
    withdrawals = sapi(alice, "fiat/orders", {"transactionType": 1}).json()

    assert (deposits["code"], deposits["success"], deposits["total"]) == ("000000", True, 1)
    # BTC is no legal money: its deposit is in capital/deposit/hisrec only.
    assert deposits["data"] == [
        {
            "orderNo": str(deposit.pk),
            "fiatCurrency": "USD",
            "indicatedAmount": "1000.00000000",
            "amount": "1000.00000000",
            "totalFee": "0.00000000",
            "method": "address",
            "status": "Successful",
            "createTime": deposits["data"][0]["createTime"],
            "updateTime": deposits["data"][0]["updateTime"],
        }
    ]
    assert deposits["data"][0]["updateTime"] >= deposits["data"][0]["createTime"]
    ((row,),) = [withdrawals["data"]]
    assert (row["orderNo"], row["amount"], row["totalFee"], row["status"]) == (
        str(withdrawal.pk),
        "100.00000000",
        "1.00000000",
        "Successful",
    )
    assert row["updateTime"] >= row["createTime"]


def test_fiat_orders_page_and_refuse_a_bad_type(alice, market):
    assert sapi(alice, "fiat/orders", {"transactionType": 0, "page": 2}).json()["data"] == []
    assert_binance_error(sapi(alice, "fiat/orders", {"transactionType": 2}), 400, -1100)
    assert_binance_error(sapi(alice, "fiat/orders"), 400, -1102)


def test_ccxt_fetches_usd_deposits_from_the_fiat_history(alice, market):
    ex, adapter = default_ccxt(alice)

    with ccxt_unpaced(ex):
        (usd,) = ex.fetch_deposits("USD")

    assert "/sapi/v1/fiat/orders" in adapter.paths
    assert (usd["currency"], usd["amount"], usd["status"], usd["type"]) == (
        "USD",
        1000.0,
        "ok",
        "deposit",
    )
