"""Public market-data endpoints: no authentication (so no session or CSRF work), throttled
per client address. Parse the query, call a selector, render."""

from datetime import UTC, datetime

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange_site.throttling import MarketDataRateThrottle
from marketdata import selectors
from marketdata.api.serializers import (
    CandleListQuerySerializer,
    CandleOutputSerializer,
    MarketOutputSerializer,
    OrderBookOutputSerializer,
    OrderBookQuerySerializer,
    PublicTradeOutputSerializer,
    TickerOutputSerializer,
    TradeListQuerySerializer,
)
from trading.selectors import market_get_by_symbol

TAGS = ["market data"]
SYMBOL = OpenApiParameter(
    "symbol",
    str,
    OpenApiParameter.PATH,
    description="`BTC-USD`, `BTC_USD` or `BTC%2FUSD`.",
)
_TIMESTAMP = serializers.DateTimeField()


class PublicApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    # Per address, open while Redis is down: the book and trades still answer then.
    throttle_classes = [MarketDataRateThrottle]

    @staticmethod
    def query(serializer_class, request) -> dict:
        serializer = serializer_class(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class MarketListApi(PublicApi):
    @extend_schema(
        tags=TAGS, operation_id="markets_list", responses=MarketOutputSerializer(many=True)
    )
    def get(self, request):
        """Every market: rules, fees, status, assets and last price."""
        return Response([selectors.market_data(market) for market in selectors.market_list()])


class MarketDetailApi(PublicApi):
    @extend_schema(
        tags=TAGS,
        operation_id="markets_get",
        parameters=[SYMBOL],
        responses=MarketOutputSerializer,
    )
    def get(self, request, symbol):
        return Response(selectors.market_data(market_get_by_symbol(symbol=symbol)))


class OrderBookApi(PublicApi):
    @extend_schema(
        tags=TAGS,
        operation_id="market_orderbook",
        parameters=[SYMBOL, OrderBookQuerySerializer],
        responses=OrderBookOutputSerializer,
        description="The top `depth` levels per side with the `seq` they reflect "
        "(ARCHITECTURE §6): the matcher's snapshot, or the database when the snapshot is "
        "unavailable.",
    )
    def get(self, request, symbol):
        params = self.query(OrderBookQuerySerializer, request)
        market = market_get_by_symbol(symbol=symbol)
        book = selectors.orderbook_get(market=market, depth=params["depth"])
        moment = datetime.fromtimestamp(book["timestamp"], UTC)
        return Response({**book, "timestamp": _TIMESTAMP.to_representation(moment)})


class TradeListApi(PublicApi):
    @extend_schema(
        tags=TAGS,
        operation_id="market_trades",
        parameters=[SYMBOL, TradeListQuerySerializer],
        responses=PublicTradeOutputSerializer(many=True),
        description="The market's last trades, newest first.",
    )
    def get(self, request, symbol):
        params = self.query(TradeListQuerySerializer, request)
        market = market_get_by_symbol(symbol=symbol)
        return Response(selectors.trade_list_recent(market=market, limit=params["limit"]))


class TickerApi(PublicApi):
    @extend_schema(
        tags=TAGS,
        operation_id="market_ticker",
        parameters=[SYMBOL],
        responses=TickerOutputSerializer,
        description="Rolling 24 h statistics from the 1m candles, with the best bid and ask "
        "(cached for about a second).",
    )
    def get(self, request, symbol):
        return Response(selectors.ticker_get(market=market_get_by_symbol(symbol=symbol)))


class TickerListApi(PublicApi):
    @extend_schema(
        tags=TAGS,
        operation_id="market_tickers",
        responses=TickerOutputSerializer(many=True),
        description="The ticker of every market.",
    )
    def get(self, request):
        return Response(selectors.ticker_list(markets=selectors.market_list()))


class CandleListApi(PublicApi):
    @extend_schema(
        tags=TAGS,
        operation_id="market_candles",
        parameters=[SYMBOL, CandleListQuerySerializer],
        responses=CandleOutputSerializer(many=True),
        description="OHLCV candles oldest first: the first `limit` from `start`, or the last "
        "`limit` up to `end` (default now). Buckets without trades are absent.",
    )
    def get(self, request, symbol):
        params = self.query(CandleListQuerySerializer, request)
        market = market_get_by_symbol(symbol=symbol)
        return Response(selectors.candle_list(market=market, **params))


# Older clients' paths; same responses, documented as deprecated.
class LegacyOrderBookApi(OrderBookApi):
    @extend_schema(
        tags=TAGS,
        operation_id="orders_book_legacy",
        parameters=[SYMBOL, OrderBookQuerySerializer],
        responses=OrderBookOutputSerializer,
        deprecated=True,
        description="Same as `GET /api/v1/market/{symbol}/orderbook`.",
    )
    def get(self, request, symbol):
        return super().get(request, symbol)


class LegacyTradeListApi(TradeListApi):
    @extend_schema(
        tags=TAGS,
        operation_id="orders_trades_legacy",
        parameters=[SYMBOL, TradeListQuerySerializer],
        responses=PublicTradeOutputSerializer(many=True),
        deprecated=True,
        description="Same as `GET /api/v1/market/{symbol}/trades`.",
    )
    def get(self, request, symbol):
        return super().get(request, symbol)
