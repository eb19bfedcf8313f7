"""The trading page. It renders the market's frame; live data comes over ``/ws/`` and every
action goes through the REST API (the same one bots use), from static/js/trade.js."""

from django.http import Http404
from django.shortcuts import redirect, render

from exchange_site.decimals import decimal_to_str
from marketdata.selectors import market_data, market_list, ticker_get
from trading.exceptions import MarketNotFound
from trading.selectors import market_get_by_symbol
from wallets.selectors import balance_list_for_user


def trade(request, symbol: str):
    try:
        market = market_get_by_symbol(symbol=symbol)
    except MarketNotFound as exc:
        raise Http404(exc.message) from exc
    if symbol != market.symbol:
        return redirect("trade", symbol=market.symbol)
    balances = {}
    if request.user.is_authenticated:
        codes = {market.base_asset.code, market.quote_asset.code}
        balances = {
            row.asset.code: decimal_to_str(row.available, row.asset.precision)
            for row in balance_list_for_user(user=request.user)
            if row.asset.code in codes
        }
    context = {
        "market": market,
        "markets": market_list(),
        "market_json": market_data(market),
        "ticker": ticker_get(market=market),
        "balances_json": balances,
        "intervals": ["1m", "5m", "15m", "1h", "4h", "1d"],
    }
    return render(request, "trading/trade.html", context)
