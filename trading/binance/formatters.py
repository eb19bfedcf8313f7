"""Our objects in Binance's field names and types: decimals as strings with at least eight
places (``"0.01000000"``), times in unix milliseconds, Binance's enum spellings."""

from decimal import Decimal

from exchange_site.decimals import decimal_to_str
from marketdata.models import INTERVAL_SECONDS
from marketdata.selectors import millis
from trading.binance.selectors import OCO_OTHER_LEG, binance_symbol
from trading.matcher.commands import ENGINE_INT_LIMIT
from trading.models import Market, Order, Trade
from wallets.models import AMOUNT_QUANTUM

PLACES = 8
ZERO = "0.00000000"
# Order entry refuses a price of 10^18 or more (trading.services.orders).
PRICE_BOUND = Decimal(10) ** 18

MARKET_STATUS = {
    Market.Status.TRADING: "TRADING",
    Market.Status.HALTED: "HALT",
    Market.Status.CANCEL_ONLY: "BREAK",
}
ORDER_TYPES = [
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]
# The ICEBERG_PARTS and TRAILING_DELTA filters of every symbol (Binance's usual values); the
# Binance API checks them, the exchange's own rules are wider.
ICEBERG_PARTS_LIMIT = 100
TRAILING_DELTA_MIN = 10
TRAILING_DELTA_MAX = 2000
ORDER_STATUS = {
    Order.Status.NEW: "NEW",
    Order.Status.OPEN: "NEW",
    Order.Status.UNTRIGGERED: "NEW",
    Order.Status.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    Order.Status.FILLED: "FILLED",
    Order.Status.CANCELLED: "CANCELED",
    Order.Status.REJECTED: "REJECTED",
    Order.Status.EXPIRED: "EXPIRED",
}
SELF_TRADE_PREVENTED = "self_trade_prevented"
# Binance's order types by ours; a post-only limit is a LIMIT_MAKER.
TYPE_NAMES = {
    Order.Type.LIMIT: "LIMIT",
    Order.Type.MARKET: "MARKET",
    Order.Type.STOP: "STOP_LOSS",
    Order.Type.STOP_LIMIT: "STOP_LOSS_LIMIT",
}
# A trailing stop with an activation price is Binance's trailing TAKE_PROFIT: the engine
# starts the trail once the price reaches the stop in the order's favour (sell: rises to it).
TAKE_PROFIT_NAMES = {Order.Type.STOP: "TAKE_PROFIT", Order.Type.STOP_LIMIT: "TAKE_PROFIT_LIMIT"}
STOP_TYPES = (Order.Type.STOP, Order.Type.STOP_LIMIT)
# OrderList.status → (listStatusType, listOrderStatus).
LIST_STATUS = {
    "executing": ("EXEC_STARTED", "EXECUTING"),
    "all_done": ("ALL_DONE", "ALL_DONE"),
    "rejected": ("ALL_DONE", "REJECT"),
}


def num(value: Decimal | None) -> str:
    return ZERO if value is None else decimal_to_str(value, PLACES)


def fee_bps(rate: Decimal) -> int:
    """A fee rate in basis points, as Binance's ``makerCommission`` (0.001 → 10)."""
    return int(rate * 10000)


# --- exchangeInfo ---------------------------------------------------------------------------


def max_price(tick_size: Decimal) -> Decimal:
    """The highest price order entry accepts: the last tick below 10^18 (a price is stored
    with at most 18 integer digits) and below 2^63 ticks (the matcher's 64-bit tick counts,
    trading.matcher.commands). Binance's "0" (no bound) would read as a maximum of 0 to
    CCXT, whose market structure test wants a positive one, as Binance's markets have."""
    stored = (PRICE_BOUND - AMOUNT_QUANTUM) // tick_size * tick_size
    return min(stored, tick_size * (ENGINE_INT_LIMIT - 1))


def symbol_info(market: Market) -> dict:
    tick = num(market.tick_size)
    return {
        "symbol": binance_symbol(market.symbol),
        "status": MARKET_STATUS.get(market.status, "BREAK"),
        "baseAsset": market.base_asset.code,
        "baseAssetPrecision": market.base_asset.precision,
        "quoteAsset": market.quote_asset.code,
        "quotePrecision": market.quote_asset.precision,
        "quoteAssetPrecision": market.quote_asset.precision,
        "baseCommissionPrecision": market.base_asset.precision,
        "quoteCommissionPrecision": market.quote_asset.precision,
        "orderTypes": ORDER_TYPES,
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": False,
        "opoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "pegInstructionsAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": tick,
                "maxPrice": num(max_price(market.tick_size)),
                "tickSize": tick,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": num(market.min_qty),
                "maxQty": num(market.max_qty),
                "stepSize": num(market.lot_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": num(market.min_qty),
                "maxQty": num(market.max_qty),
                "stepSize": num(market.lot_size),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": num(market.min_notional),
                "applyMinToMarket": True,
                "maxNotional": "9000000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 0,
            },
            {"filterType": "ICEBERG_PARTS", "limit": ICEBERG_PARTS_LIMIT},
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": TRAILING_DELTA_MIN,
                "maxTrailingAboveDelta": TRAILING_DELTA_MAX,
                "minTrailingBelowDelta": TRAILING_DELTA_MIN,
                "maxTrailingBelowDelta": TRAILING_DELTA_MAX,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_TAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER"],
    }


# --- orders ---------------------------------------------------------------------------------


def order_type(order: Order) -> str:
    if order.order_type == Order.Type.LIMIT and order.post_only:
        return "LIMIT_MAKER"
    if order.order_type in STOP_TYPES and order.trailing_delta and order.stop_price is not None:
        return TAKE_PROFIT_NAMES[order.order_type]
    return TYPE_NAMES[order.order_type]


def order_status(order: Order) -> str:
    if order.status == Order.Status.EXPIRED and order.reason == SELF_TRADE_PREVENTED:
        return "EXPIRED_IN_MATCH"
    if (
        order.status == Order.Status.CANCELLED
        and order.reason == OCO_OTHER_LEG
        # Set by binance_selectors.orders_mark_list_cancels: the owner cancelled the list.
        and not getattr(order, "list_cancelled", False)
    ):
        # Its sibling filled or triggered: Binance expires the other leg.
        return "EXPIRED"
    return ORDER_STATUS[order.status]


def order_list_id(order: Order) -> int:
    return order.order_list_id if order.order_list_id is not None else -1


def _working_time(order: Order) -> int:
    return -1 if order.status == Order.Status.UNTRIGGERED else millis(order.created_at)


def _trailing_time(order: Order) -> int:
    """When the trail started (-1 before): the placement when it trails at once, else the
    last update (the order keeps no separate activation time)."""
    if order.trailing_peak is None:
        return -1
    return millis(order.created_at if order.stop_price is None else order.updated_at)


def order_ack(order: Order) -> dict:
    return {
        "symbol": binance_symbol(order.market.symbol),
        "orderId": order.pk,
        "orderListId": order_list_id(order),
        "clientOrderId": order.client_order_id or "",
        "transactTime": millis(order.created_at),
    }


def _order_amounts(order: Order) -> dict:
    data = {
        "price": num(order.price),
        "origQty": num(order.quantity if order.quantity is not None else order.filled_quantity),
        "executedQty": num(order.filled_quantity),
        "origQuoteOrderQty": num(order.quote_quantity),
        "cummulativeQuoteQty": num(order.filled_quote),
        "status": order_status(order),
        "timeInForce": order.time_in_force,
        "type": order_type(order),
        "side": order.side.upper(),
    }
    if order.order_type in STOP_TYPES:
        data["stopPrice"] = num(order.stop_price)
    if order.iceberg_quantity is not None:
        data["icebergQty"] = num(order.iceberg_quantity)
    if order.trailing_delta:
        data["trailingDelta"] = order.trailing_delta
        data["trailingTime"] = _trailing_time(order)
    return data


def order_result(order: Order) -> dict:
    """The RESULT answer to a new order."""
    return {
        **order_ack(order),
        **_order_amounts(order),
        "workingTime": _working_time(order),
        "selfTradePreventionMode": "EXPIRE_TAKER",
    }


def order_full(order: Order, fills: list[Trade]) -> dict:
    """The FULL answer: RESULT plus each fill with its commission."""
    market = order.market
    buyer = order.side == Order.Side.BUY
    commission_asset = market.base_asset.code if buyer else market.quote_asset.code
    return {
        **order_result(order),
        "fills": [
            {
                "price": num(trade.price),
                "qty": num(trade.quantity),
                "commission": num(trade.buyer_fee if buyer else trade.seller_fee),
                "commissionAsset": commission_asset,
                "tradeId": trade.pk,
            }
            for trade in fills
        ],
    }


def order_query(order: Order) -> dict:
    """An order as ``GET /order``, ``openOrders`` and ``allOrders`` show it."""
    return {
        "symbol": binance_symbol(order.market.symbol),
        "orderId": order.pk,
        "orderListId": order_list_id(order),
        "clientOrderId": order.client_order_id or "",
        **_order_amounts(order),
        "stopPrice": num(order.stop_price),
        "icebergQty": num(order.iceberg_quantity),
        "time": millis(order.created_at),
        "updateTime": millis(order.updated_at),
        "isWorking": order.status in (Order.Status.OPEN, Order.Status.PARTIALLY_FILLED),
        "workingTime": _working_time(order),
        "selfTradePreventionMode": "EXPIRE_TAKER",
    }


def order_canceled(order: Order, cancel_client_id: str) -> dict:
    """The answer to a cancel: ``clientOrderId`` is the cancel's id, the order's own id is
    ``origClientOrderId`` (Binance's convention)."""
    return {
        "symbol": binance_symbol(order.market.symbol),
        "origClientOrderId": order.client_order_id or "",
        "orderId": order.pk,
        "orderListId": order_list_id(order),
        "clientOrderId": cancel_client_id,
        "transactTime": millis(order.updated_at),
        **_order_amounts(order),
        "selfTradePreventionMode": "EXPIRE_TAKER",
    }


def amended_order(order: Order, orig_client_order_id: str) -> dict:
    """``amendedOrder`` of ``PUT /order/amend/keepPriority`` (its own field names: ``qty``,
    ``cumulativeQuoteQty``)."""
    return {
        "symbol": binance_symbol(order.market.symbol),
        "orderId": order.pk,
        "orderListId": order_list_id(order),
        "origClientOrderId": orig_client_order_id,
        "clientOrderId": order.client_order_id or "",
        "price": num(order.price),
        "qty": num(order.quantity),
        "executedQty": num(order.filled_quantity),
        "preventedQty": ZERO,
        "quoteOrderQty": num(order.quote_quantity),
        "cumulativeQuoteQty": num(order.filled_quote),
        "status": order_status(order),
        "timeInForce": order.time_in_force,
        "type": order_type(order),
        "side": order.side.upper(),
        "workingTime": _working_time(order),
        "selfTradePreventionMode": "EXPIRE_TAKER",
    }


# --- order lists (OCO) ----------------------------------------------------------------------


def order_list_status(order_list, orders: list[Order], *, with_status_type: bool = True) -> dict:
    """An order list as ``GET /orderList`` shows it (and the head of every list answer);
    ``orders`` are its legs, by id."""
    status_type, order_status_name = LIST_STATUS.get(order_list.status, LIST_STATUS["all_done"])
    data = {
        "orderListId": order_list.pk,
        "contingencyType": "OCO",
        "listStatusType": status_type,
        "listOrderStatus": order_status_name,
        "listClientOrderId": order_list.client_list_id or "",
        "transactionTime": millis(order_list.updated_at),
        "symbol": binance_symbol(order_list.market.symbol),
        "orders": [
            {
                "symbol": binance_symbol(order_list.market.symbol),
                "orderId": order.pk,
                "clientOrderId": order.client_order_id or "",
            }
            for order in orders
        ],
    }
    if not with_status_type:
        del data["listStatusType"], data["transactionTime"]
    return data


def order_list_placed(order_list, orders: list[Order], response_type: str) -> dict:
    """The answer to a new OCO: the list and a report of each leg in ``newOrderRespType``."""
    if response_type == "ACK":
        reports = [order_ack(order) for order in orders]
    else:
        reports = [order_result(order) for order in orders]
    return {
        **order_list_status(order_list, orders),
        "transactionTime": millis(order_list.created_at),
        "orderReports": reports,
    }


def order_list_canceled(order_list, orders: list[Order], cancel_client_id: str) -> dict:
    return {
        **order_list_status(order_list, orders),
        "orderReports": [order_canceled(order, cancel_client_id) for order in orders],
    }


# --- trades ---------------------------------------------------------------------------------


def public_trade(trade: Trade) -> dict:
    return {
        "id": trade.pk,
        "price": num(trade.price),
        "qty": num(trade.quantity),
        "quoteQty": num(trade.quote_quantity),
        "time": millis(trade.created_at),
        "isBuyerMaker": trade.taker_side == Order.Side.SELL,
        "isBestMatch": True,
    }


def agg_trade(trade: Trade) -> dict:
    """Every fill is its own aggregate: the engine reports one trade per maker order."""
    return {
        "a": trade.pk,
        "p": num(trade.price),
        "q": num(trade.quantity),
        "f": trade.pk,
        "l": trade.pk,
        "T": millis(trade.created_at),
        "m": trade.taker_side == Order.Side.SELL,
        "M": True,
    }


def my_trade(trade: Trade, user_id: int, list_ids: dict[int, int] | None = None) -> dict:
    """``list_ids``: the order list of each of the user's orders in one (others: -1)."""
    buyer = trade.buyer_id == user_id
    market = trade.market
    order_id = trade.buy_order_id if buyer else trade.sell_order_id
    return {
        "symbol": binance_symbol(market.symbol),
        "id": trade.pk,
        "orderId": order_id,
        "orderListId": (list_ids or {}).get(order_id, -1),
        "price": num(trade.price),
        "qty": num(trade.quantity),
        "quoteQty": num(trade.quote_quantity),
        "commission": num(trade.buyer_fee if buyer else trade.seller_fee),
        "commissionAsset": market.base_asset.code if buyer else market.quote_asset.code,
        "time": millis(trade.created_at),
        "isBuyer": buyer,
        "isMaker": (trade.taker_side == Order.Side.BUY) != buyer,
        "isBestMatch": True,
    }


# --- tickers and klines -------------------------------------------------------------------


def text_num(value: str | None) -> str:
    return ZERO if value is None else num(Decimal(value))


def ticker_24hr(market: Market, ticker: dict, stats: dict, *, mini: bool = False) -> dict:
    """Binance's 24 h ticker from ours (``marketdata.selectors.ticker_get``)."""
    volume = Decimal(ticker["volume"])
    quote_volume = Decimal(ticker["quote_volume"])
    data = {
        "symbol": binance_symbol(market.symbol),
        "openPrice": text_num(ticker["open"]),
        "highPrice": text_num(ticker["high"]),
        "lowPrice": text_num(ticker["low"]),
        "lastPrice": text_num(ticker["last"]),
        "volume": num(volume),
        "quoteVolume": num(quote_volume),
        "openTime": ticker["open_time"],
        "closeTime": ticker["close_time"],
        "firstId": stats["first_id"] if stats["first_id"] is not None else -1,
        "lastId": stats["last_id"] if stats["last_id"] is not None else -1,
        "count": ticker["trade_count"],
    }
    if mini:
        return data
    weighted = quote_volume / volume if volume else None
    return {
        "symbol": data["symbol"],
        "priceChange": text_num(ticker["change"]),
        "priceChangePercent": ticker["change_percent"] or "0.00",
        "weightedAvgPrice": num(weighted.quantize(market.tick_size) if weighted else None),
        "prevClosePrice": text_num(ticker["open"]),
        "lastQty": num(stats["last_qty"]),
        "bidPrice": text_num(ticker["best_bid"]),
        "bidQty": text_num(ticker["best_bid_quantity"]),
        "askPrice": text_num(ticker["best_ask"]),
        "askQty": text_num(ticker["best_ask_quantity"]),
        **data,
    }


def kline(candle: dict, interval: str, taker_buy: tuple | None) -> list:
    """A 12-field kline row from ``marketdata.selectors.candle_list``'s candle."""
    open_time = candle["open_time"]
    base, quote = taker_buy or (None, None)
    return [
        open_time,
        num(Decimal(candle["open"])),
        num(Decimal(candle["high"])),
        num(Decimal(candle["low"])),
        num(Decimal(candle["close"])),
        num(Decimal(candle["volume"])),
        open_time + INTERVAL_SECONDS[interval] * 1000 - 1,
        num(Decimal(candle["quote_volume"])),
        candle["trade_count"],
        num(base if base is not None else Decimal(0)),
        num(quote if quote is not None else Decimal(0)),
        "0",
    ]
