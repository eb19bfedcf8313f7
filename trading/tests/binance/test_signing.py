"""Signed requests: X-MBX-APIKEY, the HMAC over the raw query string + body, timestamp and
recvWindow, and every way a request can fail them (each refused, nothing changed)."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiKey
from trading.tests.binance.conftest import BinanceClient, sign
from trading.tests.helpers import state

pytestmark = pytest.mark.django_db

ORDER = {
    "symbol": "BTCUSD",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01",
    "price": "20000",
    "newClientOrderId": "x-TKT5PX2F0123456789abcdef012345",
    "newOrderRespType": "ACK",
}


def assert_binance_error(response, status: int, code: int, msg: str | None = None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "msg"}, body
    assert body["code"] == code, body
    if msg is not None:
        assert body["msg"] == msg


@pytest.fixture
def funded(trader, market):
    return trader(market, usd="10000", btc="1")


def test_signed_account_lists_balances(funded, binance_for):
    client = binance_for(funded)
    response = client.signed("GET", "account", {"recvWindow": 10000})
    assert response.status_code == 200, response.content
    balances = {row["asset"]: row for row in response.json()["balances"]}
    assert balances["USD"] == {"asset": "USD", "free": "10000.00000000", "locked": "0.00000000"}
    assert balances["BTC"]["free"] == "1.00000000"
    assert "code" not in response.json()


def test_signed_post_with_form_body_places_an_order(funded, binance_for, no_order_wait):
    client = binance_for(funded)
    response = client.signed("POST", "order", ORDER)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["symbol"] == "BTCUSD"
    assert body["clientOrderId"] == ORDER["newClientOrderId"]
    assert isinstance(body["orderId"], int)


def test_signature_may_sit_in_the_query_while_parameters_sit_in_the_body(funded, binance_for):
    # Binance signs query string + body concatenated, wherever each parameter travels.
    client = binance_for(funded)
    query = "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC"
    body = f"quantity=0.01&price=20000&newOrderRespType=ACK&timestamp={int(time.time() * 1000)}"
    signature = sign(client.secret, query + body)
    response = client.client.post(
        f"/api/v3/order?{query}&signature={signature}",
        data=body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_MBX_APIKEY=client.key,
    )
    assert response.status_code == 200, response.content


def test_a_changed_byte_in_the_body_is_refused(funded, binance_for):
    client = binance_for(funded)
    payload = client.payload(ORDER)
    signature = sign(client.secret, payload)
    tampered = payload.replace("quantity=0.01", "quantity=0.02")
    before = state()
    response = client.send("POST", "order", tampered, signature=signature)
    assert_binance_error(response, 400, -1022, "Signature for this request is not valid.")
    assert state() == before


def test_parameters_reordered_after_signing_are_refused(funded, binance_for):
    client = binance_for(funded)
    payload = client.payload(ORDER)
    signature = sign(client.secret, payload)
    parts = payload.split("&")
    reordered = "&".join([parts[1], parts[0], *parts[2:]])
    before = state()
    response = client.send("POST", "order", reordered, signature=signature)
    assert_binance_error(response, 400, -1022)
    assert state() == before


def test_a_request_replayed_outside_its_window_is_refused(funded, binance_for):
    client = binance_for(funded)
    old = int(time.time() * 1000) - 6000
    before = state()
    response = client.signed("POST", "order", ORDER, timestamp=old)
    assert_binance_error(
        response, 400, -1021, "Timestamp for this request is outside of the recvWindow."
    )
    assert state() == before
    # The same request inside a wider window passes: the window is the only replay bound.
    assert client.signed("GET", "account", {"recvWindow": 10000}, timestamp=old).status_code == 200


def test_a_timestamp_from_the_future_is_refused(funded, binance_for):
    client = binance_for(funded)
    response = client.signed("GET", "account", timestamp=int(time.time() * 1000) + 5000)
    assert_binance_error(response, 400, -1021)


def test_recv_window_is_capped_at_a_minute(funded, binance_for):
    client = binance_for(funded)
    response = client.signed("GET", "account", {"recvWindow": 60001})
    assert_binance_error(response, 400, -1131)


def test_the_wrong_secret_is_refused(funded, binance_for):
    client = binance_for(funded)
    client.secret = "x" * 64
    assert_binance_error(client.signed("GET", "account"), 400, -1022)


def test_a_missing_or_malformed_key_is_a_format_error(funded, binance_for):
    client = binance_for(funded)
    key = client.key
    client.key = None
    assert_binance_error(client.signed("GET", "account"), 401, -2014, "API-key format invalid.")
    client.key = key[:-1] + "!"
    assert_binance_error(client.signed("GET", "account"), 401, -2014)


def test_an_unknown_key_is_refused(funded, binance_for):
    client = binance_for(funded)
    client.key = "A" * 64
    assert_binance_error(
        client.signed("GET", "account"),
        401,
        -2015,
        "Invalid API-key, IP, or permissions for action.",
    )


def test_a_revoked_key_is_refused_at_once(funded, binance_for):
    client = binance_for(funded)
    assert client.signed("GET", "account").status_code == 200
    ApiKey.objects.filter(pk=client.api_key.pk).update(revoked_at=timezone.now())
    assert_binance_error(client.signed("GET", "account"), 401, -2015)


def test_a_frozen_owner_is_refused_at_once(funded, binance_for):
    client = binance_for(funded)
    assert client.signed("GET", "account").status_code == 200
    funded.frozen_at = timezone.now()
    funded.save(update_fields=["frozen_at"])
    before = state()
    assert_binance_error(client.signed("GET", "account"), 401, -2015)
    assert_binance_error(client.signed("POST", "order", ORDER), 401, -2015)
    assert state() == before


def test_the_ip_allowlist_is_honoured(funded, binance_for):
    allowed = binance_for(funded, ip_allowlist=["10.1.0.0/16"])
    assert_binance_error(allowed.signed("GET", "account"), 401, -2015)  # from 127.0.0.1
    allowed.client = BinanceClient(REMOTE_ADDR="10.1.2.3").client
    assert allowed.signed("GET", "account").status_code == 200


def test_a_read_only_key_cannot_trade(funded, binance_for):
    client = binance_for(funded, permissions=("read",))
    assert client.signed("GET", "account").status_code == 200
    before = state()
    assert_binance_error(client.signed("POST", "order", ORDER), 401, -2015)
    assert_binance_error(
        client.signed("DELETE", "order", {"symbol": "BTCUSD", "orderId": 1}), 401, -2015
    )
    assert state() == before


def test_signature_and_timestamp_are_mandatory(funded, binance_for):
    client = binance_for(funded)
    response = client.client.get(
        f"/api/v3/account?timestamp={int(time.time() * 1000)}", HTTP_X_MBX_APIKEY=client.key
    )
    assert_binance_error(response, 400, -1102)
    assert "signature" in response.json()["msg"]
    response = client.send("GET", "account", "recvWindow=5000")
    assert_binance_error(response, 400, -1102)
    assert "timestamp" in response.json()["msg"]


def test_a_duplicated_parameter_is_refused(funded, binance_for):
    client = binance_for(funded)
    payload = client.payload({"symbol": "BTCUSD"}) + "&symbol=ETHUSD"
    assert_binance_error(client.send("GET", "openOrders", payload), 400, -1101)


def test_use_is_recorded_without_a_write_per_request(funded, binance_for):
    client = binance_for(funded)
    assert client.signed("GET", "account").status_code == 200
    api_key = ApiKey.objects.get(pk=client.api_key.pk)
    assert api_key.last_used_at is not None
    assert timezone.now() - api_key.last_used_at < timedelta(seconds=5)
    first_use = api_key.last_used_at
    assert client.signed("GET", "account").status_code == 200
    assert ApiKey.objects.get(pk=client.api_key.pk).last_used_at == first_use
