"""Binance's WebSocket API (``/ws-api/v3``): what each request method does, over the same
services, selectors and formatters as ``/api/v3`` (``trading.binance.views``).

Synchronous; the consumer (``marketdata.binance_user.WsApiConsumer``) runs it off its event
loop. Requests are ``{"id", "method", "params"}``; a SIGNED method's ``params`` carry
``apiKey``, ``timestamp`` (``recvWindow``) and ``signature``, the HMAC-SHA256 of every other
parameter sorted by name as ``name=value`` joined by ``&``
(https://developers.binance.com/docs/binance-spot-api-docs/websocket-api/request-security),
or, after ``session.logon``, no ``apiKey`` nor ``signature``.
"""

from types import SimpleNamespace

from django.db import transaction

from accounts import services as account_services
from accounts.models import ApiKey
from trading import services
from trading.binance import errors, formatters
from trading.binance import selectors as binance_selectors
from trading.binance.auth import (
    API_KEY_PATTERN,
    SIGNATURE_PATTERN,
    BinanceOrderThrottle,
    _timestamp_check,
    interval_name,
)
from trading.binance.errors import BinanceError
from trading.binance.order_params import generated_client_id, order_request
from trading.binance.params import Params
from trading.binance.views import LIST_MAX_LIMIT, _order_answer, _order_lookup, account_answer
from trading.models import Order, OrderCommand

READ, TRADE = "read", "trade"
# Parameters every signed request may carry besides its own.
AUTH_PARAMS = {"apiKey", "signature", "returnRateLimits"}


def render(value) -> str:
    """A JSON parameter as its text in the signature payload (and for ``Params``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | dict):
        raise BinanceError(errors.ILLEGAL_CHARS, "Illegal characters found in a parameter.")
    return str(value)


def signature_payload(params: dict) -> bytes:
    return "&".join(
        f"{name}={render(value)}" for name, value in sorted(params.items()) if name != "signature"
    ).encode()


def authenticate(params: dict, *, ip: str | None, session_key: str | None = None) -> ApiKey:
    """The key that signed ``params`` (or the session's, when they carry no signature),
    after the key, signature and timestamp checks of REST's ``SIGNED`` calls."""
    key = params.get("apiKey")
    signature = params.get("signature")
    if key is None and signature is None and session_key is not None:
        try:
            api_key = account_services.api_key_identify(key=session_key, ip=ip)
        except Exception as exc:
            raise errors.binance_error(exc) from exc
        _timestamp_check({name: render(value) for name, value in params.items()})
        return api_key
    if not isinstance(key, str) or not API_KEY_PATTERN.fullmatch(key):
        if key is None:
            raise errors.mandatory("apiKey")
        raise BinanceError(errors.BAD_API_KEY_FMT, "API-key format invalid.", status=401)
    if not isinstance(signature, str) or not signature:
        raise errors.mandatory("signature")
    if not SIGNATURE_PATTERN.fullmatch(signature.encode()):
        raise BinanceError(errors.INVALID_SIGNATURE, "Signature for this request is not valid.")
    try:
        api_key = account_services.api_key_authenticate(
            key=key, payload=signature_payload(params), signature=signature, ip=ip
        )
    except Exception as exc:
        raise errors.binance_error(exc) from exc
    _timestamp_check({name: render(value) for name, value in params.items()})
    account_services.api_key_touch(api_key=api_key)
    return api_key


def _params(params: dict) -> Params:
    return Params(
        {name: render(value) for name, value in params.items() if name not in AUTH_PARAMS}
    )


def _market(params: Params):
    return binance_selectors.market_get_by_binance_symbol(
        symbol=params.text("symbol", required=True)
    )


def _caller(api_key: ApiKey):
    return SimpleNamespace(user=api_key.user)


def _order_count_check(api_key: ApiKey) -> None:
    """REST's per-key new-order limit (``BinanceOrderThrottle``), counted together."""
    throttle = BinanceOrderThrottle()
    caller = SimpleNamespace(method="POST", auth=api_key, user=api_key.user)
    if not throttle.allow_request(caller, None):
        raise BinanceError(
            errors.TOO_MANY_ORDERS,
            f"Too many new orders; current limit is {throttle.num_requests} orders per "
            f"{interval_name(throttle.duration)}.",
            status=429,
        )


def order_place(api_key: ApiKey, params: Params):
    _order_count_check(api_key)
    market = _market(params)
    new_order, response_type = order_request(params, market)
    order, _created = services.order_place(user=api_key.user, request=new_order)
    if response_type != "ACK":
        order = binance_selectors.orders_wait_settled(
            order_ids=[order.pk], kind=OrderCommand.Kind.PLACE
        )[0]
    return _order_answer(order, response_type)


def order_status(api_key: ApiKey, params: Params):
    params.unread({"symbol", "orderId", "origClientOrderId", "timestamp", "recvWindow"})
    market = _market(params)
    order = _order_lookup(params, market, _caller(api_key))
    if order is None:
        raise BinanceError(errors.NO_SUCH_ORDER, errors.ORDER_DOES_NOT_EXIST_MSG)
    return formatters.order_query(order)


def order_cancel(api_key: ApiKey, params: Params):
    params.unread(
        {
            "symbol",
            "orderId",
            "origClientOrderId",
            "newClientOrderId",
            "cancelRestrictions",
            "timestamp",
            "recvWindow",
        }
    )
    market = _market(params)
    order = _order_lookup(params, market, _caller(api_key))
    if order is None:
        raise BinanceError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_MSG)
    cancel_id = params.text("newClientOrderId") or generated_client_id()
    services.order_cancel(user=api_key.user, order_id=order.pk)
    order = binance_selectors.orders_wait_settled(
        order_ids=[order.pk], kind=OrderCommand.Kind.CANCEL
    )[0]
    if not order.is_live and order.status != Order.Status.CANCELLED:
        raise BinanceError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_MSG)
    return formatters.order_canceled(order, cancel_id)


def open_orders_status(api_key: ApiKey, params: Params):
    params.unread({"symbol", "timestamp", "recvWindow"})
    market = _market(params) if params.given("symbol") else None
    orders = binance_selectors.order_list_range(user=api_key.user, market=market, live_only=True)
    return [formatters.order_query(order) for order in orders]


def open_orders_cancel_all(api_key: ApiKey, params: Params):
    params.unread({"symbol", "timestamp", "recvWindow"})
    market = _market(params)
    queued = services.order_cancel_all(user=api_key.user, symbol=market.symbol)
    if not queued:
        raise BinanceError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_MSG)
    orders = binance_selectors.orders_wait_settled(order_ids=queued, kind=OrderCommand.Kind.CANCEL)
    return [formatters.order_canceled(order, generated_client_id()) for order in orders]


def all_orders(api_key: ApiKey, params: Params):
    orders = binance_selectors.order_list_range(
        user=api_key.user,
        market=_market(params),
        from_id=params.integer("orderId"),
        start=params.millis("startTime"),
        end=params.millis("endTime"),
        limit=params.integer("limit", default=500, low=1, high=LIST_MAX_LIMIT),
    )
    return [formatters.order_query(order) for order in orders]


def my_trades(api_key: ApiKey, params: Params):
    trades = binance_selectors.trade_list_for_user_range(
        user=api_key.user,
        market=_market(params),
        limit=params.integer("limit", default=500, low=1, high=LIST_MAX_LIMIT),
        order_id=params.integer("orderId"),
        from_id=params.integer("fromId"),
        start=params.millis("startTime"),
        end=params.millis("endTime"),
    )
    list_ids = binance_selectors.trade_order_list_ids(trades=trades, user_id=api_key.user_id)
    return [formatters.my_trade(trade, api_key.user_id, list_ids) for trade in trades]


def account_status(api_key: ApiKey, params: Params):
    params.unread({"omitZeroBalances", "timestamp", "recvWindow"})
    return account_answer(user=api_key.user, api_key=api_key, params=params)


def account_balance(api_key: ApiKey, params: Params):
    return account_status(api_key, params)["balances"]


def order_test(api_key: ApiKey, params: Params):
    market = _market(params)
    new_order, _response_type = order_request(params, market)
    with transaction.atomic():
        services.order_place(user=api_key.user, request=new_order)
        transaction.set_rollback(True)
    return {}


# method → (permission, handler, operation for error codes, weight)
SIGNED = {
    "order.place": (TRADE, order_place, "place", 1),
    "order.test": (TRADE, order_test, "place", 1),
    "order.status": (READ, order_status, "query", 4),
    "order.cancel": (TRADE, order_cancel, "cancel", 1),
    "openOrders.status": (READ, open_orders_status, "query", 6),
    "openOrders.cancelAll": (TRADE, open_orders_cancel_all, "cancel", 1),
    "allOrders": (READ, all_orders, "query", 20),
    "myTrades": (READ, my_trades, "query", 20),
    "account.status": (READ, account_status, "", 20),
    "account.balance": (READ, account_balance, "", 20),
}


def call(method: str, params: dict, *, ip: str | None, session_key: str | None):
    """Run one SIGNED ``method``: authenticate, check the key's permission, answer. Raises
    ``BinanceError`` (what the request gets back)."""
    permission, handler, operation, _weight = SIGNED[method]
    api_key = authenticate(params, ip=ip, session_key=session_key)
    allowed = api_key.can_trade if permission == TRADE else api_key.can_read
    if not allowed:
        raise errors.rejected_key()
    try:
        return handler(api_key, _params(params))
    except BinanceError:
        raise
    except Exception as exc:
        raise errors.binance_error(exc, operation=operation, where=method) from exc


def session_logon(params: dict, *, ip: str | None) -> ApiKey:
    """``session.logon`` (and ``userDataStream.subscribe.signature``): the key that signed
    ``params``."""
    return authenticate(params, ip=ip)
