"""Binance's wallet API (``/sapi/v1``) and the empty futures ``exchangeInfo``: CCXT's
``binance`` class with its DEFAULT options (only ``urls`` and keys set), and each endpoint's
exact fields over signed requests.

CCXT runs in-process here: its ``requests`` session is given a transport adapter that hands
each request, as CCXT built and signed it, to Django's test client (the real URLs, views,
authentication and database; no other process)."""

from decimal import Decimal
from urllib.parse import urlsplit

import ccxt
import pytest
import requests
from django.test import Client
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from trading.binance.auth import now_ms
from trading.models import Market
from trading.tests.binance.conftest import BinanceClient, sign
from trading.tests.binance.test_signing import assert_binance_error
from trading.tests.factories import MarketFactory
from wallets import services as wallet_services
from wallets.models import Withdrawal
from wallets.tests.factories import AssetFactory
from wallets.tests.helpers import withdrawal_request_confirmed

BASE = "http://testserver"
DAY_MS = 86_400_000


class DjangoAdapter(BaseAdapter):
    """A ``requests`` transport that answers from Django's test client; records each path."""

    def __init__(self):
        super().__init__()
        self.client = Client()
        self.paths: list[str] = []

    def send(self, request, **kwargs):
        url = urlsplit(request.url)
        self.paths.append(url.path)
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in {"content-length", "content-type", "host"}
        }
        answer = self.client.generic(
            request.method,
            url.path + (f"?{url.query}" if url.query else ""),
            data=request.body or b"",
            content_type=request.headers.get("Content-Type", "application/octet-stream"),
            headers=headers,
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response._content = answer.content
        response.headers = CaseInsensitiveDict(dict(answer.headers))
        response.encoding = "utf-8"
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


def default_ccxt(client: BinanceClient) -> tuple[ccxt.binance, DjangoAdapter]:
    """``ccxt.binance`` as a bot would make it: keys, then every API family it uses on this
    host; no option changed."""
    exchange = ccxt.binance({"apiKey": client.key, "secret": client.secret})
    exchange.urls["api"] = {
        "public": f"{BASE}/api/v3",
        "private": f"{BASE}/api/v3",
        "sapi": f"{BASE}/sapi/v1",
        "fapiPublic": f"{BASE}/fapi/v1",
        "dapiPublic": f"{BASE}/dapi/v1",
    }
    adapter = DjangoAdapter()
    exchange.session.mount(BASE, adapter)
    return exchange, adapter


def sapi(client: BinanceClient, path: str, params: dict | None = None, *, signed: bool = True):
    """A GET of ``/sapi/v1/<path>`` signed as CCXT signs it (or not signed at all)."""
    if not signed:
        return client.client.get(f"/sapi/v1/{path}", **client.headers())
    payload = client.payload(params)
    return client.client.get(
        f"/sapi/v1/{path}?{payload}&signature={sign(client.secret, payload)}",
        **client.headers(),
    )


@pytest.fixture
def eth(market):
    """A second market, ETH-BTC, with its own fees; ETH with 18 places."""
    eth = AssetFactory(
        code="ETH",
        name="Ether",
        precision=18,
        min_withdrawal=Decimal("0.01"),
        withdrawal_fee=Decimal("0.000000000000000123"),
        confirmations_required=12,
    )
    MarketFactory(
        symbol="ETH-BTC",
        base_asset=eth,
        quote_asset=market.base_asset,
        maker_fee=Decimal("0.0005"),
        taker_fee=Decimal("0.00075"),
    )
    return eth


@pytest.fixture
def alice(market, eth, trader, binance_for):
    user = trader(market, usd="1000", btc="2")
    client = binance_for(user)
    client.user = user
    return client


def test_ccxt_with_default_options_loads_markets_currencies_fees_and_transfers(
    alice, market, eth, fund
):
    ex, adapter = default_ccxt(alice)
    withdrawal = wallet_services.withdrawal_request(
        user=alice.user, asset_code="BTC", amount=Decimal("0.5"), address="bc1-out"
    )

    markets = ex.load_markets()

    assert sorted(markets) == ["BTC/USD", "ETH/BTC"]
    assert markets["BTC/USD"]["id"] == "BTCUSD"
    assert markets["BTC/USD"]["margin"] is False
    # What load_markets asked for with CCXT's defaults, all of it on this host.
    assert sorted(set(adapter.paths)) == [
        "/api/v3/exchangeInfo",
        "/dapi/v1/exchangeInfo",
        "/fapi/v1/exchangeInfo",
        "/sapi/v1/capital/config/getall",
        "/sapi/v1/margin/allPairs",
        "/sapi/v1/margin/isolated/allPairs",
    ]

    currencies = ex.currencies
    assert {"BTC", "USD", "ETH"} <= set(currencies)
    btc = currencies["BTC"]
    assert btc["name"] == "Bitcoin"
    assert btc["active"] is True
    assert btc["precision"] == 1e-8
    assert btc["fee"] == float(market.base_asset.withdrawal_fee)
    assert btc["limits"]["withdraw"]["min"] == float(market.base_asset.min_withdrawal)
    assert btc["networks"]["BTC"]["deposit"] is True
    assert btc["networks"]["BTC"]["withdraw"] is True
    assert currencies["USD"]["precision"] == 0.01
    assert currencies["USD"]["fee"] == 1
    assert currencies["USD"]["limits"]["withdraw"]["min"] == 10
    assert currencies["ETH"]["precision"] == 1e-18
    assert currencies["ETH"]["fee"] == 1.23e-16

    fees = ex.fetch_trading_fees()
    assert fees["BTC/USD"]["maker"] == 0.001
    assert fees["BTC/USD"]["taker"] == 0.002
    assert fees["ETH/BTC"]["maker"] == 0.0005
    assert fees["ETH/BTC"]["taker"] == 0.00075
    one = ex.fetch_trading_fee("ETH/BTC")
    assert (one["symbol"], one["maker"], one["taker"]) == ("ETH/BTC", 0.0005, 0.00075)

    deposits = ex.fetch_deposits()
    assert sorted((d["currency"], d["amount"], d["status"]) for d in deposits) == [
        ("BTC", 2.0, "ok"),
        ("USD", 1000.0, "ok"),
    ]
    assert [d["currency"] for d in ex.fetch_deposits("BTC")] == ["BTC"]

    [sent] = ex.fetch_withdrawals()
    assert sent["id"] == str(withdrawal.pk)
    assert sent["currency"] == "BTC"
    assert sent["amount"] == 0.5
    assert sent["fee"] == {"currency": "BTC", "cost": float(withdrawal.fee)}
    assert sent["address"] == "bc1-out"
    assert sent["status"] == "pending"
    assert sent["type"] == "withdrawal"

    balance = ex.fetch_balance()
    assert balance["BTC"]["free"] == pytest.approx(2 - 0.5 - float(withdrawal.fee))

    fees = ex.fetch_deposit_withdraw_fees(["BTC", "USD"])
    assert fees["BTC"]["withdraw"]["fee"] == 0.0005
    assert fees["USD"]["networks"]["USD"]["withdraw"]["fee"] == 1


def test_capital_config_getall_fields(alice, market, eth):
    withdrawal = wallet_services.withdrawal_request(
        user=alice.user, asset_code="BTC", amount=Decimal("0.5"), address="bc1-out"
    )
    response = sapi(alice, "capital/config/getall")

    assert response.status_code == 200, response.content
    coins = {row["coin"]: row for row in response.json()}
    assert sorted(coins) == ["BTC", "ETH", "USD"]
    btc = coins["BTC"]
    assert withdrawal.amount + withdrawal.fee == Decimal("0.5005")
    assert btc == {
        "coin": "BTC",
        "name": "Bitcoin",
        "depositAllEnable": True,
        "withdrawAllEnable": True,
        "free": "1.49950000",
        "locked": "0.50050000",
        "freeze": "0.00000000",
        "withdrawing": "0.50050000",
        "ipoing": "0.00000000",
        "ipoable": "0.00000000",
        "storage": "0.00000000",
        "isLegalMoney": False,
        "trading": True,
        "networkList": [btc["networkList"][0]],
    }
    network = btc["networkList"][0]
    assert network["network"] == "BTC"
    assert network["coin"] == "BTC"
    assert network["isDefault"] is True
    assert network["depositEnable"] is network["withdrawEnable"] is True
    assert network["withdrawFee"] == "0.00050000"
    assert network["withdrawMin"] == "0.00100000"
    assert network["withdrawIntegerMultiple"] == "0.00000001"
    assert network["minConfirm"] == 2
    usd = coins["USD"]
    assert (usd["free"], usd["locked"]) == ("1000.00000000", "0.00000000")
    assert usd["networkList"][0]["withdrawIntegerMultiple"] == "0.01"
    assert usd["networkList"][0]["minConfirm"] == 0
    eth = coins["ETH"]
    assert eth["free"] == "0.000000000000000000"
    assert eth["networkList"][0]["withdrawFee"] == "0.000000000000000123"
    assert eth["networkList"][0]["withdrawIntegerMultiple"] == "0.000000000000000001"


def test_an_inactive_asset_is_listed_with_deposits_and_withdrawals_off(alice, eth):
    eth.is_active = False
    eth.save(update_fields=["is_active"])

    coins = {row["coin"]: row for row in sapi(alice, "capital/config/getall").json()}
    detail = sapi(alice, "asset/assetDetail", {"asset": "eth"}).json()

    assert coins["ETH"]["depositAllEnable"] is False
    assert coins["ETH"]["trading"] is False
    assert coins["ETH"]["networkList"][0]["withdrawEnable"] is False
    assert detail == {
        "ETH": {
            "minWithdrawAmount": "0.010000000000000000",
            "depositStatus": False,
            "withdrawFee": "0.000000000000000123",
            "withdrawStatus": False,
            "depositTip": "",
        }
    }


def test_asset_detail_lists_every_asset(alice, market, eth):
    detail = sapi(alice, "asset/assetDetail").json()

    assert sorted(detail) == ["BTC", "ETH", "USD"]
    assert detail["USD"] == {
        "minWithdrawAmount": "10.00000000",
        "depositStatus": True,
        "withdrawFee": "1.00000000",
        "withdrawStatus": True,
        "depositTip": "",
    }


def test_trade_fee_of_all_markets_and_of_one(alice, market, eth):
    everything = sapi(alice, "asset/tradeFee")
    one = sapi(alice, "asset/tradeFee", {"symbol": "ETHBTC"})
    unknown = sapi(alice, "asset/tradeFee", {"symbol": "DOGEUSD"})

    assert everything.json() == [
        {"symbol": "BTCUSD", "makerCommission": "0.00100000", "takerCommission": "0.00200000"},
        {"symbol": "ETHBTC", "makerCommission": "0.00050000", "takerCommission": "0.00075000"},
    ]
    assert one.json() == [everything.json()[1]]
    assert_binance_error(unknown, 400, -1121, "Invalid symbol.")


def test_deposit_history_fields_and_filters(alice, market, fund):
    [usd_deposit, btc_deposit] = sorted(
        alice.user.deposit_set.select_related("asset"), key=lambda d: d.asset.code, reverse=True
    )
    response = sapi(alice, "capital/deposit/hisrec")

    assert response.status_code == 200, response.content
    rows = response.json()
    assert [row["coin"] for row in rows] == ["BTC", "USD"]  # newest first
    assert rows[0] == {
        "id": str(btc_deposit.pk),
        "amount": "2.00000000",
        "coin": "BTC",
        "network": "BTC",
        "status": 1,
        "address": btc_deposit.address,
        "addressTag": "",
        "txId": btc_deposit.tx_id,
        "insertTime": rows[0]["insertTime"],
        "completeTime": rows[0]["completeTime"],
        "transferType": 0,
        "confirmTimes": f"{btc_deposit.confirmations}/{btc_deposit.confirmations_required}",
        "unlockConfirm": 0,
        "walletType": 0,
    }
    assert abs(rows[0]["insertTime"] - now_ms()) < 60_000
    assert rows[1]["amount"] == "1000.00000000"
    assert [
        row["coin"] for row in sapi(alice, "capital/deposit/hisrec", {"coin": "usd"}).json()
    ] == ["USD"]
    assert sapi(alice, "capital/deposit/hisrec", {"status": 0}).json() == []
    assert len(sapi(alice, "capital/deposit/hisrec", {"limit": 1}).json()) == 1
    assert [row["coin"] for row in sapi(alice, "capital/deposit/hisrec", {"offset": 1}).json()] == [
        "USD"
    ]
    assert sapi(alice, "capital/deposit/hisrec", {"txId": usd_deposit.tx_id}).json()[0]["id"] == (
        str(usd_deposit.pk)
    )
    # A window in the past holds nothing.
    past = now_ms() - 100 * DAY_MS
    assert sapi(alice, "capital/deposit/hisrec", {"startTime": past}).json() == []


def test_history_windows_are_at_most_90_days(alice):
    start = now_ms() - 91 * DAY_MS
    too_wide = sapi(alice, "capital/deposit/hisrec", {"startTime": start, "endTime": now_ms()})
    backwards = sapi(
        alice, "capital/withdraw/history", {"startTime": now_ms(), "endTime": now_ms() - 1000}
    )
    bad_limit = sapi(alice, "capital/withdraw/history", {"limit": 1001})

    assert_binance_error(too_wide, 400, -1127)
    assert_binance_error(backwards, 400, -1130)
    assert_binance_error(bad_limit, 400, -1100)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("capital/deposit/hisrec", {"startTime": 253402300799000}),  # + 90 days: past 9999
        ("capital/withdraw/history", {"startTime": 253402300799000}),
        ("capital/deposit/hisrec", {"offset": 10**19}),
        ("capital/withdraw/history", {"offset": 10**19}),
        ("capital/withdraw/history", {"idList": "9" * 20}),
        ("capital/withdraw/history", {"idList": "1,,2"}),
        ("capital/withdraw/history", {"idList": ",".join(["1"] * 46)}),
        ("capital/deposit/hisrec", {"status": "x"}),
    ],
)
def test_bad_history_parameters_are_binance_errors(alice, path, params):
    assert_binance_error(sapi(alice, path, params), 400, -1100)


def test_unknown_status_code_matches_nothing(alice):
    assert sapi(alice, "capital/deposit/hisrec", {"status": 7}).json() == []
    assert sapi(alice, "capital/withdraw/history", {"status": 5}).json() == []


def test_withdrawal_history_maps_every_status(alice, market):
    first = withdrawal_request_confirmed(
        user=alice.user, asset_code="BTC", amount=Decimal("0.1"), address="bc1-a"
    )
    second = wallet_services.withdrawal_request(
        user=alice.user, asset_code="BTC", amount=Decimal("0.2"), address="bc1-b"
    )

    rows = sapi(alice, "capital/withdraw/history").json()

    assert [row["id"] for row in rows] == [str(second.pk), str(first.pk)]
    assert rows[1] == {
        "id": str(first.pk),
        "amount": "0.10000000",
        "transactionFee": "0.00050000",
        "coin": "BTC",
        "status": 2,
        "address": "bc1-a",
        "txId": "",
        "applyTime": first.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        "network": "BTC",
        "transferType": 0,
        "info": "",
        "confirmNo": 0,
        "walletType": 0,
        "txKey": "",
    }
    assert rows[0]["status"] == 0  # awaiting the email confirmation
    expected = {
        Withdrawal.Status.AWAITING_CONFIRMATION: 0,
        Withdrawal.Status.REQUESTED: 2,
        Withdrawal.Status.AWAITING_SECOND_APPROVAL: 2,
        Withdrawal.Status.APPROVED: 2,
        Withdrawal.Status.REJECTED: 3,
        Withdrawal.Status.PROCESSING: 4,
        Withdrawal.Status.COMPLETED: 6,
        Withdrawal.Status.CANCELLED: 1,
        Withdrawal.Status.EXPIRED: 1,
    }
    for status, code in expected.items():
        # Only the status column, to read it back: the money is not what is tested here.
        Withdrawal.objects.filter(pk=first.pk).update(status=status)
        [row] = sapi(alice, "capital/withdraw/history", {"idList": str(first.pk)}).json()
        assert row["status"] == code, status
        filtered = sapi(alice, "capital/withdraw/history", {"status": code}).json()
        assert str(first.pk) in [item["id"] for item in filtered], status
    assert sapi(alice, "capital/withdraw/history", {"coin": "USD"}).json() == []


def test_margin_pairs_are_empty_and_futures_list_no_symbol(alice, public_client):
    assert sapi(alice, "margin/allPairs").json() == []
    assert sapi(alice, "margin/isolated/allPairs").json() == []
    for family in ("fapi", "dapi"):
        info = public_client.client.get(f"/{family}/v1/exchangeInfo")
        assert info.status_code == 200
        assert info.json()["symbols"] == []


@pytest.mark.parametrize(
    "path",
    [
        "capital/config/getall",
        "capital/deposit/hisrec",
        "capital/withdraw/history",
        "asset/assetDetail",
        "asset/tradeFee",
        "margin/allPairs",
        "margin/isolated/allPairs",
    ],
)
def test_every_sapi_endpoint_needs_a_signed_request(alice, path):
    no_key = BinanceClient()
    unsigned = sapi(alice, path, signed=False)
    keyless = sapi(no_key, path, signed=False)

    assert_binance_error(unsigned, 400, -1102)
    assert_binance_error(keyless, 401, -2014)


def test_unknown_sapi_path_is_a_binance_error(alice):
    assert_binance_error(sapi(alice, "capital/deposit/address"), 404, -1000)


def test_a_key_without_read_is_refused(market, user, binance_for):
    client = binance_for(user, permissions=("trade",))
    assert_binance_error(sapi(client, "capital/config/getall"), 401, -2015)


@pytest.mark.django_db(transaction=True)
def test_ccxt_with_default_options_over_http(live_stack):
    """The same over real HTTP: CCXT against the web process (gunicorn), options untouched."""
    from trading.tests.binance.test_ccxt import Trader

    alice = Trader(live_stack, "sapi_alice", {"USD": "1500", "SOL": "7"})
    ex = ccxt.binance({"apiKey": alice.credentials["key"], "secret": alice.credentials["secret"]})
    web = live_stack.web_url
    ex.urls["api"] = {
        "public": f"{web}/api/v3",
        "private": f"{web}/api/v3",
        "sapi": f"{web}/sapi/v1",
        "fapiPublic": f"{web}/fapi/v1",
        "dapiPublic": f"{web}/dapi/v1",
    }

    markets = ex.load_markets()

    assert "SOL/USD" in markets
    assert all(market["spot"] and not market["margin"] for market in markets.values())
    assert ex.currencies["SOL"]["active"] is True
    assert ex.currencies["USD"]["precision"] == 0.01
    sol_usd = Market.objects.get(symbol="SOL-USD")
    fee = ex.fetch_trading_fee("SOL/USD")
    assert (fee["maker"], fee["taker"]) == (float(sol_usd.maker_fee), float(sol_usd.taker_fee))
    deposits = ex.fetch_deposits()
    assert sorted((d["currency"], d["amount"], d["status"]) for d in deposits) == [
        ("SOL", 7, "ok"),
        ("USD", 1500, "ok"),
    ]
    assert ex.fetch_withdrawals() == []
