"""Seed 003's market-data paths (../shared/seeds/003…: "Market Data", "Market Tickers"):
``GET /api/v1/depth?symbol=`` with levels as ``[price, quantity]`` pairs, and the 24 h
tickers of one market (``/api/v1/ticker/24hr?symbol=``) and of all (``/api/v1/tickers``).
Same selectors as ``/api/v1/market/...``."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from marketdata import selectors
from marketdata.api.serializers import TickerOutputSerializer
from marketdata.api.views import TAGS, PublicApi
from trading.selectors import market_get_by_symbol


class SeedDepthQuerySerializer(serializers.Serializer):
    symbol = serializers.CharField(max_length=40)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)


class SeedDepthApi(PublicApi):
    @extend_schema(
        tags=TAGS,
        operation_id="seed_depth",
        parameters=[SeedDepthQuerySerializer],
        responses={200: None, 404: None},
        description='Seed 003\'s depth: `{"bids": [["100.50", "150"], ...], "asks": [...]}`.',
    )
    def get(self, request):
        params = self.query(SeedDepthQuerySerializer, request)
        market = market_get_by_symbol(symbol=params["symbol"])
        book = selectors.orderbook_get(market=market, depth=params["limit"])
        return Response(
            {
                "bids": [[price, quantity] for price, quantity, *_ in book["bids"]],
                "asks": [[price, quantity] for price, quantity, *_ in book["asks"]],
            }
        )


class SeedSymbolQuerySerializer(serializers.Serializer):
    symbol = serializers.CharField(max_length=40)


class SeedTicker24hrApi(PublicApi):
    @extend_schema(
        tags=TAGS,
        operation_id="seed_ticker_24hr",
        parameters=[SeedSymbolQuerySerializer],
        responses={200: TickerOutputSerializer, 404: None},
        description="Seed 003's 24 h ticker of `symbol` (every market's: `/api/v1/tickers`).",
    )
    def get(self, request):
        params = self.query(SeedSymbolQuerySerializer, request)
        return Response(selectors.ticker_get(market=market_get_by_symbol(symbol=params["symbol"])))


class SeedTickerListApi(PublicApi):
    @extend_schema(
        tags=TAGS,
        operation_id="seed_tickers",
        responses=TickerOutputSerializer(many=True),
        description="Seed 003's tickers: every market's 24 h ticker.",
    )
    def get(self, request):
        return Response(selectors.ticker_list(markets=selectors.market_list()))
