"""``/api/v3``: Binance's spot REST paths, exactly as Binance spells them (no trailing slash:
a redirect would turn a signed POST into a GET)."""

from django.urls import re_path

from trading.binance import order_views, sapi, views


def _route(name: str, view, url_name: str):
    return re_path(rf"^{name}$", view.as_view(), name=f"binance-{url_name}")


urlpatterns = [
    _route("ping", views.PingApi, "ping"),
    _route("time", views.TimeApi, "time"),
    _route("exchangeInfo", views.ExchangeInfoApi, "exchange-info"),
    _route("depth", views.DepthApi, "depth"),
    _route("trades", views.TradesApi, "trades"),
    _route("historicalTrades", views.HistoricalTradesApi, "historical-trades"),
    _route("aggTrades", views.AggTradesApi, "agg-trades"),
    _route("klines", views.KlinesApi, "klines"),
    _route("uiKlines", views.KlinesApi, "ui-klines"),
    _route("ticker/24hr", views.Ticker24hrApi, "ticker-24hr"),
    _route("ticker/price", views.TickerPriceApi, "ticker-price"),
    _route("ticker/bookTicker", views.BookTickerApi, "ticker-book"),
    _route("avgPrice", views.AvgPriceApi, "avg-price"),
    _route("order", views.OrderApi, "order"),
    _route("order/test", views.OrderTestApi, "order-test"),
    _route("order/oco", order_views.LegacyOcoApi, "order-oco"),
    _route("order/cancelReplace", order_views.CancelReplaceApi, "order-cancel-replace"),
    _route("order/amend/keepPriority", order_views.AmendKeepPriorityApi, "order-amend"),
    _route("orderList/oco", order_views.OcoApi, "order-list-oco"),
    _route("orderList", order_views.OrderListApi, "order-list"),
    _route("allOrderList", order_views.AllOrderListApi, "all-order-list"),
    _route("openOrderList", order_views.OpenOrderListApi, "open-order-list"),
    _route("openOrders", views.OpenOrdersApi, "open-orders"),
    _route("allOrders", views.AllOrdersApi, "all-orders"),
    _route("account", views.AccountApi, "account"),
    _route("account/commission", views.AccountCommissionApi, "account-commission"),
    _route("myTrades", views.MyTradesApi, "my-trades"),
    _route("userDataStream", views.UserDataStreamApi, "user-data-stream"),
    re_path(r"^.*$", views.UnknownPathApi.as_view(), name="binance-unknown"),
]

# ``/sapi/v1``: the wallet endpoints CCXT calls at start-up and for fees and transfers
# (trading.binance.sapi).
sapi_urlpatterns = [
    _route("capital/config/getall", sapi.CapitalConfigApi, "sapi-capital-config"),
    _route("capital/deposit/hisrec", sapi.DepositHistoryApi, "sapi-deposit-history"),
    _route("capital/withdraw/history", sapi.WithdrawHistoryApi, "sapi-withdraw-history"),
    _route("asset/assetDetail", sapi.AssetDetailApi, "sapi-asset-detail"),
    _route("asset/tradeFee", sapi.TradeFeeApi, "sapi-trade-fee"),
    _route("system/status", sapi.SystemStatusApi, "sapi-system-status"),
    _route("fiat/orders", sapi.FiatOrdersApi, "sapi-fiat-orders"),
    _route("margin/allPairs", sapi.MarginPairsApi, "sapi-margin-pairs"),
    _route("margin/isolated/allPairs", sapi.MarginPairsApi, "sapi-margin-isolated-pairs"),
    re_path(r"^.*$", views.UnknownPathApi.as_view(), name="binance-sapi-unknown"),
]

# ``/fapi/v1`` and ``/dapi/v1``: no futures here, but CCXT loads their markets by default.
fapi_urlpatterns = [
    _route("exchangeInfo", sapi.FuturesExchangeInfoApi, "fapi-exchange-info"),
    re_path(r"^.*$", views.UnknownPathApi.as_view(), name="binance-fapi-unknown"),
]
dapi_urlpatterns = [
    _route("exchangeInfo", sapi.FuturesExchangeInfoApi, "dapi-exchange-info"),
    re_path(r"^.*$", views.UnknownPathApi.as_view(), name="binance-dapi-unknown"),
]
