"""Binance's spot REST API (``/api/v3``) over the exchange's own services and selectors.

Thin like every view here: read Binance's parameters, call the same services and selectors
as ``/api/v1`` (``trading.services.order_place`` ...), answer in Binance's shapes. Public
endpoints need no key; ``SIGNED`` ones (account, orders, trades) need ``X-MBX-APIKEY`` and a
signature (``trading.binance.auth``). Every error is ``{"code", "msg"}``
(``trading.binance.errors``).
"""

from decimal import Decimal

from django.db import transaction
from django.db.models import Max
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services as account_services
from exchange_site.exceptions import ExchangeError
from marketdata import selectors as marketdata_selectors
from marketdata.groups import CANDLE_INTERVALS
from trading import services
from trading.binance import errors, formatters, listen_keys, order_params
from trading.binance import selectors as binance_selectors
from trading.binance.auth import (
    API_KEY_PATTERN,
    BinanceOrderThrottle,
    BinanceRateThrottle,
    BinanceSignatureAuthentication,
    CanRead,
    CanTrade,
    interval_name,
    now_ms,
    signed_payload,
)
from trading.binance.errors import BinanceError, binance_exception_handler
from trading.binance.fees import account_commission, account_rates, order_test_commission
from trading.binance.params import Params
from trading.fee_selectors import fee_rates_for_markets
from trading.models import Market, Order, OrderCommand
from wallets.models import Balance
from wallets.selectors import balance_list_for_user

ORDER_BOOK_MAX_LIMIT = 5000
LIST_MAX_LIMIT = 1000
AVG_PRICE_MINUTES = 5  # Binance's avgPrice window
_INTERVAL_NAMES = {1: "SECOND", 60: "MINUTE", 3600: "HOUR", 86400: "DAY"}


class BinanceApi(APIView):
    """Base of every ``/api/v3`` view: Binance's errors, JSON only, throttled per address
    before any key or signature work, parameters read from the raw request."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
    renderer_classes = [JSONRenderer]
    # Parameters come from the raw query string and body (auth.signed_payload), never from
    # DRF's parsers: the signature covers those exact bytes.
    parser_classes = []
    operation = ""
    # Binance's request weight of the endpoint (https://developers.binance.com/docs/
    # binance-spot-api-docs/rest-api/limits); ``request_weight`` where it depends on the call.
    weight = 1
    weight_throttle: BinanceRateThrottle | None = None

    def get_exception_handler(self):
        return binance_exception_handler

    def request_weight(self, request) -> int:
        return self.weight

    def _weight(self, request) -> int:
        try:
            return max(1, self.request_weight(request))
        except BinanceError:
            # Bad parameters are refused by the view itself; they weigh the least.
            return 1

    def initial(self, request, *args, **kwargs):
        self.weight_throttle = BinanceRateThrottle()
        if not self.weight_throttle.allow_request(request, self, weight=self._weight(request)):
            # Per address: -1003 (SignedApi.throttled is the per-key order limit).
            raise Throttled(self.weight_throttle.wait())
        super().initial(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        throttle = self.weight_throttle
        if throttle is not None and throttle.used is not None:
            response[throttle.header_name()] = str(throttle.used)
        return response

    def params(self, request) -> Params:
        return Params(signed_payload(request).params)

    def market(self, params: Params) -> Market:
        return binance_selectors.market_get_by_binance_symbol(
            symbol=params.text("symbol", required=True)
        )

    def markets(self, params: Params) -> tuple[list[Market], bool]:
        """The markets of ``symbol``, ``symbols`` or all; and whether one was asked for."""
        if params.given("symbol") and params.given("symbols"):
            raise BinanceError(
                errors.PARAM_NOT_REQUIRED, "Parameter 'symbol' and 'symbols' cannot be combined."
            )
        if params.given("symbol"):
            return [self.market(params)], True
        wanted = params.symbols()
        markets = binance_selectors.market_list()
        if wanted is None:
            return markets, False
        by_symbol = {binance_selectors.binance_symbol(market.symbol): market for market in markets}
        chosen = []
        for symbol in wanted:
            market = by_symbol.get(symbol.strip().upper())
            if market is None:
                raise errors.invalid_symbol()
            chosen.append(market)
        return chosen, False


class SignedApi(BinanceApi):
    authentication_classes = [BinanceSignatureAuthentication]
    permission_classes = [CanRead]
    trade_methods: tuple[str, ...] = ()
    order_throttle: BinanceOrderThrottle | None = None

    def get_permissions(self):
        if self.request.method in self.trade_methods:
            return [CanTrade()]
        return [CanRead()]

    def get_throttles(self):
        throttles = super().get_throttles()
        self.order_throttle = next(
            (throttle for throttle in throttles if isinstance(throttle, BinanceOrderThrottle)),
            None,
        )
        return throttles

    def throttled(self, request, wait):
        # The only DRF throttle of a signed view is the API key's order count.
        limit = self.order_throttle
        raise BinanceError(
            errors.TOO_MANY_ORDERS,
            f"Too many new orders; current limit is {limit.num_requests} orders per "
            f"{interval_name(limit.duration)}.",
            status=429,
            headers={"Retry-After": str(int((wait or 1) + 0.999))},
        )

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        limit = self.order_throttle
        if limit is not None and limit.num_requests is not None and limit.count:
            response[f"X-MBX-ORDER-COUNT-{interval_name(limit.duration)}"] = str(limit.count)
        return response


def _schema(operation_id: str):
    # Binance documents this API; our OpenAPI schema lists only the paths.
    return extend_schema(tags=["binance"], operation_id=operation_id, exclude=True)


# --- general ----------------------------------------------------------------------------------


class PingApi(BinanceApi):
    @_schema("binance_ping")
    def get(self, request):
        return Response({})


class TimeApi(BinanceApi):
    @_schema("binance_time")
    def get(self, request):
        return Response({"serverTime": now_ms()})


class ExchangeInfoApi(BinanceApi):
    weight = 20

    @_schema("binance_exchange_info")
    def get(self, request):
        markets, _single = self.markets(self.params(request))
        rate = BinanceRateThrottle()
        rate_limits = []
        if rate.num_requests:
            rate_limits.append(
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": _INTERVAL_NAMES.get(rate.duration, "SECOND"),
                    "intervalNum": 1 if rate.duration in _INTERVAL_NAMES else rate.duration,
                    "limit": rate.num_requests,
                }
            )
        return Response(
            {
                "timezone": "UTC",
                "serverTime": now_ms(),
                "rateLimits": rate_limits,
                "exchangeFilters": [],
                "symbols": [formatters.symbol_info(market) for market in markets],
            }
        )


class UnknownPathApi(BinanceApi):
    """Anything else under /api/v3 answers in Binance's shape, not /api/v1's."""

    @_schema("binance_unknown")
    def _unknown(self, request, *args, **kwargs):
        raise BinanceError(errors.UNKNOWN, f"Unknown path: {request.path}.", status=404)

    get = post = put = patch = delete = _unknown


# --- market data ------------------------------------------------------------------------------


class DepthApi(BinanceApi):
    def request_weight(self, request) -> int:
        limit = self.params(request).limit(default=100, high=ORDER_BOOK_MAX_LIMIT)
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250

    @_schema("binance_depth")
    def get(self, request):
        params = self.params(request)
        market = self.market(params)
        limit = params.limit(default=100, high=ORDER_BOOK_MAX_LIMIT)
        book = marketdata_selectors.orderbook_get(market=market, depth=limit)
        # lastUpdateId is the book's seq: the same sequence as the U/u of the depth stream.
        return Response(
            {
                "lastUpdateId": book["seq"],
                "bids": [level[:2] for level in book["bids"]],
                "asks": [level[:2] for level in book["asks"]],
            }
        )


class TradesApi(BinanceApi):
    weight = 25

    @_schema("binance_trades")
    def get(self, request):
        params = self.params(request)
        market = self.market(params)
        limit = params.limit(default=500, high=LIST_MAX_LIMIT)
        trades = binance_selectors.trade_list_range(market=market, limit=limit)
        return Response([formatters.public_trade(trade) for trade in trades])


class HistoricalTradesApi(BinanceApi):
    weight = 25

    @_schema("binance_historical_trades")
    def get(self, request):
        params = self.params(request)
        market = self.market(params)
        limit = params.limit(default=500, high=LIST_MAX_LIMIT)
        trades = binance_selectors.trade_list_range(
            market=market, limit=limit, from_id=params.integer("fromId")
        )
        return Response([formatters.public_trade(trade) for trade in trades])


class AggTradesApi(BinanceApi):
    weight = 4

    @_schema("binance_agg_trades")
    def get(self, request):
        params = self.params(request)
        market = self.market(params)
        limit = params.limit(default=500, high=LIST_MAX_LIMIT)
        trades = binance_selectors.trade_list_range(
            market=market,
            limit=limit,
            from_id=params.integer("fromId"),
            start=params.millis("startTime"),
            end=params.millis("endTime"),
        )
        return Response([formatters.agg_trade(trade) for trade in trades])


class KlinesApi(BinanceApi):
    weight = 2

    @_schema("binance_klines")
    def get(self, request):
        params = self.params(request)
        market = self.market(params)
        interval = params.text("interval", required=True)
        if interval not in CANDLE_INTERVALS:
            raise BinanceError(errors.INVALID_INTERVAL, "Invalid interval.")
        time_zone = params.text("timeZone", default="0")
        if time_zone not in ("0", "+0", "-0", "00:00", "+00:00", "-00:00"):
            raise BinanceError(errors.INVALID_PARAMETER, "Only timeZone 0 (UTC) is supported.")
        candles = marketdata_selectors.candle_list(
            market=market,
            interval=interval,
            start=params.millis("startTime"),
            end=params.millis("endTime"),
            limit=params.limit(default=500, high=LIST_MAX_LIMIT),
        )
        taker_buy = binance_selectors.taker_buy_volumes(
            market=market,
            interval=interval,
            open_times_ms=[candle["open_time"] for candle in candles],
        )
        return Response(
            [
                formatters.kline(candle, interval, taker_buy.get(candle["open_time"]))
                for candle in candles
            ]
        )


class Ticker24hrApi(BinanceApi):
    def request_weight(self, request) -> int:
        params = self.params(request)
        if params.given("symbol"):
            return 2
        symbols = params.symbols()
        if symbols is None:
            return 80
        return 2 if len(symbols) <= 20 else 40 if len(symbols) <= 100 else 80

    @_schema("binance_ticker_24hr")
    def get(self, request):
        params = self.params(request)
        markets, single = self.markets(params)
        mini = params.choice("type", ("FULL", "MINI")) == "MINI"
        tickers = marketdata_selectors.ticker_list(markets=markets)
        rows = [
            formatters.ticker_24hr(
                market,
                ticker,
                binance_selectors.trade_window_stats(market=market, since_ms=ticker["open_time"]),
                mini=mini,
            )
            for market, ticker in zip(markets, tickers, strict=True)
        ]
        return Response(rows[0] if single else rows)


class TickerPriceApi(BinanceApi):
    def request_weight(self, request) -> int:
        params = self.params(request)
        return 2 if params.given("symbol") or params.given("symbols") else 4

    @_schema("binance_ticker_price")
    def get(self, request):
        markets, single = self.markets(self.params(request))
        rows = [
            {
                "symbol": binance_selectors.binance_symbol(market.symbol),
                "price": formatters.num(market.last_price),
            }
            for market in markets
        ]
        return Response(rows[0] if single else rows)


class BookTickerApi(BinanceApi):
    request_weight = TickerPriceApi.request_weight

    @_schema("binance_ticker_book")
    def get(self, request):
        markets, single = self.markets(self.params(request))
        rows = []
        for market in markets:
            book = marketdata_selectors.orderbook_get(market=market, depth=1)
            bid = book["bids"][0] if book["bids"] else (None, None)
            ask = book["asks"][0] if book["asks"] else (None, None)
            rows.append(
                {
                    "symbol": binance_selectors.binance_symbol(market.symbol),
                    "bidPrice": formatters.text_num(bid[0]),
                    "bidQty": formatters.text_num(bid[1]),
                    "askPrice": formatters.text_num(ask[0]),
                    "askQty": formatters.text_num(ask[1]),
                }
            )
        return Response(rows[0] if single else rows)


class AvgPriceApi(BinanceApi):
    """The volume-weighted price of the last ``AVG_PRICE_MINUTES`` minutes' trades (the last
    price when there were none), as python-binance's ``get_avg_price`` and the connector's
    ``avg_price`` read it."""

    @_schema("binance_avg_price")
    def get(self, request):
        market = self.market(self.params(request))
        average, close_ms = binance_selectors.trade_average_price(
            market=market, since_ms=now_ms() - AVG_PRICE_MINUTES * 60_000
        )
        if average is None:
            average = market.last_price or Decimal(0)
        price = average.quantize(Decimal("1e-8"))
        return Response(
            {"mins": AVG_PRICE_MINUTES, "price": formatters.num(price), "closeTime": close_ms}
        )


# --- orders -----------------------------------------------------------------------------------


def _order_answer(order: Order, response_type: str) -> dict:
    if response_type == "ACK":
        return formatters.order_ack(order)
    if response_type == "RESULT":
        return formatters.order_result(order)
    return formatters.order_full(order, list(binance_selectors.order_fills(order=order)))


def _order_lookup(params: Params, market: Market, request) -> Order | None:
    order_id = params.integer("orderId")
    client_order_id = params.text("origClientOrderId")
    if order_id is None and client_order_id is None:
        raise BinanceError(
            errors.MANDATORY_PARAM_EMPTY_OR_MALFORMED,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        )
    return binance_selectors.order_find_for_user(
        user=request.user, market=market, order_id=order_id, client_order_id=client_order_id
    )


class OrderApi(SignedApi):
    trade_methods = ("POST", "DELETE")
    throttle_classes = [BinanceOrderThrottle]

    def request_weight(self, request) -> int:
        return 4 if request.method == "GET" else 1

    @_schema("binance_order_place")
    def post(self, request):
        self.operation = "place"
        params = self.params(request)
        market = self.market(params)
        order_request, response_type = order_params.order_request(params, market)
        order, _created = services.order_place(user=request.user, request=order_request)
        if response_type != "ACK":
            order = binance_selectors.orders_wait_settled(
                order_ids=[order.pk], kind=OrderCommand.Kind.PLACE
            )[0]
        return Response(_order_answer(order, response_type))

    @_schema("binance_order_get")
    def get(self, request):
        self.operation = "query"
        params = self.params(request)
        order = _order_lookup(params, self.market(params), request)
        if order is None:
            raise BinanceError(errors.NO_SUCH_ORDER, errors.ORDER_DOES_NOT_EXIST_MSG)
        return Response(formatters.order_query(order))

    @_schema("binance_order_cancel")
    def delete(self, request):
        self.operation = "cancel"
        params = self.params(request)
        market = self.market(params)
        order = _order_lookup(params, market, request)
        if order is None:
            raise BinanceError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_MSG)
        cancel_id = params.text("newClientOrderId") or order_params.generated_client_id()
        services.order_cancel(user=request.user, order_id=order.pk)
        order = binance_selectors.orders_wait_settled(
            order_ids=[order.pk], kind=OrderCommand.Kind.CANCEL
        )[0]
        if not order.is_live and order.status != Order.Status.CANCELLED:
            # It filled or expired before the cancel reached the book: nothing was cancelled.
            raise BinanceError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_MSG)
        return Response(formatters.order_canceled(order, cancel_id))


class OrderTestApi(SignedApi):
    """Validates a new order exactly as ``POST /order`` would, then places nothing."""

    trade_methods = ("POST",)

    @_schema("binance_order_test")
    def post(self, request):
        self.operation = "place"
        params = self.params(request)
        market = self.market(params)
        order_request, _response_type = order_params.order_request(params, market)
        with transaction.atomic():
            services.order_place(user=request.user, request=order_request)
            # Rolled back: no order, reserve or command remains, and the matcher is not woken.
            transaction.set_rollback(True)
        if (params.text("computeCommissionRates") or "false").lower() != "true":
            return Response({})
        ((_market, maker, taker),) = fee_rates_for_markets(user=request.user, markets=[market])
        return Response(order_test_commission(maker, taker))


class OpenOrdersApi(SignedApi):
    trade_methods = ("DELETE",)

    def request_weight(self, request) -> int:
        if request.method != "GET":
            return 1
        return 6 if self.params(request).given("symbol") else 80

    @_schema("binance_open_orders")
    def get(self, request):
        params = self.params(request)
        market = self.market(params) if params.given("symbol") else None
        orders = binance_selectors.order_list_range(
            user=request.user, market=market, live_only=True
        )
        return Response([formatters.order_query(order) for order in orders])

    @_schema("binance_open_orders_cancel")
    def delete(self, request):
        self.operation = "cancel"
        params = self.params(request)
        market = self.market(params)
        # Report exactly the orders a cancel was queued for now: none on a halted market,
        # and none of those another request is already cancelling.
        queued = services.order_cancel_all(user=request.user, symbol=market.symbol)
        if not queued:
            raise BinanceError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_MSG)
        orders = binance_selectors.orders_wait_settled(
            order_ids=queued, kind=OrderCommand.Kind.CANCEL
        )
        # One cancel id for the lot, as Binance answers; an OCO once, in its list shape.
        cancel_id = order_params.generated_client_id()
        lists = binance_selectors.order_lists_by_id(
            ids={order.order_list_id for order in orders if order.order_list_id is not None}
        )
        legs = binance_selectors.order_list_legs(order_lists=list(lists.values()))
        rows, listed = [], set()
        for order in orders:
            list_id = order.order_list_id
            if list_id is None:
                rows.append(formatters.order_canceled(order, cancel_id))
            elif list_id not in listed:
                listed.add(list_id)
                rows.append(
                    formatters.order_list_canceled(lists[list_id], legs[list_id], cancel_id)
                )
        return Response(rows)


class AllOrdersApi(SignedApi):
    weight = 20

    @_schema("binance_all_orders")
    def get(self, request):
        params = self.params(request)
        orders = binance_selectors.order_list_range(
            user=request.user,
            market=self.market(params),
            from_id=params.integer("orderId"),
            start=params.millis("startTime"),
            end=params.millis("endTime"),
            limit=params.limit(default=500, high=LIST_MAX_LIMIT),
        )
        return Response([formatters.order_query(order) for order in orders])


# --- account ----------------------------------------------------------------------------------


def account_answer(*, user, api_key, params: Params) -> dict:
    """``GET /account`` (and the WebSocket API's ``account.status``)."""
    omit_zero = (params.text("omitZeroBalances") or "false").lower() == "true"
    balances = [
        {
            "asset": row.asset.code,
            "free": formatters.num(row.available),
            "locked": formatters.num(row.locked),
        }
        for row in balance_list_for_user(user=user)
        if not (omit_zero and not row.total)
    ]
    maker, taker = account_rates(user)
    updated = Balance.objects.filter(user=user).aggregate(at=Max("updated_at"))["at"]
    return {
        "makerCommission": formatters.fee_bps(maker),
        "takerCommission": formatters.fee_bps(taker),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": formatters.num(maker),
            "taker": formatters.num(taker),
            "buyer": formatters.ZERO,
            "seller": formatters.ZERO,
        },
        "canTrade": api_key.can_trade,
        "canWithdraw": False,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": marketdata_selectors.millis(updated) if updated else 0,
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": user.pk,
    }


class AccountApi(SignedApi):
    weight = 20

    @_schema("binance_account")
    def get(self, request):
        return Response(
            account_answer(user=request.user, api_key=request.auth, params=self.params(request))
        )


class AccountCommissionApi(SignedApi):
    """The caller's rates in one market, as the matcher charges them."""

    weight = 20

    @_schema("binance_account_commission")
    def get(self, request):
        market = self.market(self.params(request))
        ((_market, maker, taker),) = fee_rates_for_markets(user=request.user, markets=[market])
        return Response(account_commission(market, maker, taker))


class MyTradesApi(SignedApi):
    weight = 20

    @_schema("binance_my_trades")
    def get(self, request):
        params = self.params(request)
        trades = binance_selectors.trade_list_for_user_range(
            user=request.user,
            market=self.market(params),
            limit=params.limit(default=500, high=LIST_MAX_LIMIT),
            order_id=params.integer("orderId"),
            from_id=params.integer("fromId"),
            start=params.millis("startTime"),
            end=params.millis("endTime"),
        )
        list_ids = binance_selectors.trade_order_list_ids(trades=trades, user_id=request.user.pk)
        return Response([formatters.my_trade(trade, request.user.pk, list_ids) for trade in trades])


# --- user data stream -------------------------------------------------------------------------


class BinanceApiKeyAuthentication(BinanceSignatureAuthentication):
    """``USER_STREAM`` calls: the key (``X-MBX-APIKEY``), no signature."""

    def authenticate(self, request):
        key = request.META.get("HTTP_X_MBX_APIKEY", "")
        if not API_KEY_PATTERN.fullmatch(key):
            raise BinanceError(errors.BAD_API_KEY_FMT, "API-key format invalid.", status=401)
        try:
            api_key = account_services.api_key_identify(
                key=key, ip=BinanceRateThrottle().get_ident(request)
            )
        except ExchangeError as exc:
            raise errors.from_exchange_error(exc) from exc
        return api_key.user, api_key


class UserDataStreamApi(BinanceApi):
    """``POST`` opens (or extends) the user's listenKey, ``PUT`` keeps it alive, ``DELETE``
    closes it (``trading.binance.listen_keys``); read it at ``/api/v3/ws/<listenKey>``."""

    authentication_classes = [BinanceApiKeyAuthentication]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.auth is None:
            raise BinanceError(errors.BAD_API_KEY_FMT, "API-key format invalid.", status=401)

    @_schema("binance_user_data_stream_open")
    def post(self, request):
        self.params(request).unread(set())
        return Response({"listenKey": listen_keys.listen_key_create(user_id=request.user.pk)})

    @_schema("binance_user_data_stream_keepalive")
    def put(self, request):
        params = self.params(request)
        params.unread({"listenKey"})
        listen_keys.listen_key_keepalive(user_id=request.user.pk, key=params.text("listenKey"))
        return Response({})

    @_schema("binance_user_data_stream_close")
    def delete(self, request):
        params = self.params(request)
        params.unread({"listenKey"})
        listen_keys.listen_key_close(user_id=request.user.pk, key=params.text("listenKey"))
        return Response({})
