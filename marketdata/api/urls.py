from django.urls import re_path

from exchange_site.urlpaths import path_with_optional_slash as route
from marketdata.api import seed_views, views

# Mounted at /api/v1/. Django decodes %2F in the path, so a symbol may hold one "/"
# (BTC%2FUSD arrives as BTC/USD); every spelling then goes to market_get_by_symbol.
SYMBOL = r"(?P<symbol>[^/]+(?:/[^/]+)?)"


def symbol_route(prefix: str, suffix: str, view, name: str):
    return re_path(rf"^{prefix}/{SYMBOL}{suffix}/?$", view, name=name)


urlpatterns = [
    route("markets", views.MarketListApi.as_view(), "markets"),
    symbol_route("markets", "", views.MarketDetailApi.as_view(), "market"),
    route("market/tickers", views.TickerListApi.as_view(), "market-tickers"),
    symbol_route("market", "/orderbook", views.OrderBookApi.as_view(), "market-orderbook"),
    symbol_route("market", "/trades", views.TradeListApi.as_view(), "market-trades"),
    symbol_route("market", "/ticker", views.TickerApi.as_view(), "market-ticker"),
    symbol_route("market", "/candles", views.CandleListApi.as_view(), "market-candles"),
    # Legacy paths of older clients (trading.api.urls has no pattern that takes these).
    symbol_route("orders/book", "", views.LegacyOrderBookApi.as_view(), "orders-book-legacy"),
    symbol_route("orders/trades", "", views.LegacyTradeListApi.as_view(), "orders-trades-legacy"),
    # Seed 003's paths (docs/API.md, "The seeds' shapes").
    route("depth", seed_views.SeedDepthApi.as_view(), "seed-depth"),
    route("ticker/24hr", seed_views.SeedTicker24hrApi.as_view(), "seed-ticker-24hr"),
    route("tickers", seed_views.SeedTickerListApi.as_view(), "seed-tickers"),
]
