"""Fixtures of the Binance API tests: keys, and a client that signs as CCXT does."""

import hashlib
import hmac
import time
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient

from accounts import services as account_services


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


class BinanceClient:
    """Sends requests the way ``ccxt.binance.sign`` builds them: the parameters, then
    ``timestamp`` and ``recvWindow``, then ``&signature=``; in the query string for GET and
    DELETE, in a form body for POST."""

    def __init__(self, key: str | None = None, secret: str | None = None, **client_kwargs):
        self.client = APIClient(**client_kwargs)
        self.key = key
        self.secret = secret

    def public(self, path: str, params: dict | None = None):
        query = urlencode(params or {})
        return self.client.get(f"/api/v3/{path}" + (f"?{query}" if query else ""))

    def payload(self, params: dict | None = None, *, timestamp: int | None = None) -> str:
        params = dict(params or {})
        params.setdefault("timestamp", timestamp or int(time.time() * 1000))
        return urlencode(params)

    def headers(self) -> dict:
        return {"HTTP_X_MBX_APIKEY": self.key} if self.key is not None else {}

    def send(self, method: str, path: str, payload: str, signature: str | None = None):
        """Send ``payload`` signed (or with the given signature) exactly as written."""
        signature = signature if signature is not None else sign(self.secret, payload)
        signed = f"{payload}&signature={signature}"
        url = f"/api/v3/{path}"
        if method == "POST":
            return self.client.post(
                url, data=signed, content_type="application/x-www-form-urlencoded", **self.headers()
            )
        call = getattr(self.client, method.lower())
        return call(f"{url}?{signed}", **self.headers())

    def signed(self, method: str, path: str, params: dict | None = None, **kwargs):
        return self.send(method, path, self.payload(params, **kwargs))


@pytest.fixture
def api_key_for(db):
    def api_key_for(user, permissions=("read", "trade"), ip_allowlist=None):
        return account_services.api_key_create(
            user=user, label="bot", permissions=list(permissions), ip_allowlist=ip_allowlist
        )

    return api_key_for


@pytest.fixture
def binance_for(api_key_for):
    """A signing client for ``user`` with a new key (read and trade unless told)."""

    def binance_for(user, permissions=("read", "trade"), **kwargs):
        api_key, secret = api_key_for(user, permissions, **kwargs)
        client = BinanceClient(api_key.key, secret)
        client.api_key = api_key
        return client

    return binance_for


@pytest.fixture
def public_client():
    return BinanceClient()


@pytest.fixture
def no_order_wait(settings):
    """No matcher runs in-process: answer at once instead of waiting for it."""
    settings.BINANCE_ORDER_WAIT_MS = 0


@contextmanager
def ccxt_unpaced(exchange):
    """CCXT's synchronous client without its own pacing for a moment.

    Before each call it sleeps ``rateLimit`` × the endpoint's cost since its last one: 30 s
    before a read of Binance's fiat history (weight 90,000, cost 600). The pacing is the
    client's alone; the request it then sends is the same."""
    paced = exchange.enableRateLimit
    exchange.enableRateLimit = False
    try:
        yield exchange
    finally:
        exchange.enableRateLimit = paced
