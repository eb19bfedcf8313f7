"""Binance's wallet API (``/sapi/v1``) and its futures ``exchangeInfo`` (``/fapi/v1``,
``/dapi/v1``): what ``ccxt.binance`` calls with its default options, answered from the real
wallets.

- ``capital/config/getall``: every asset with the caller's balance, and one network (the
  asset's own chain, named by its code) with the asset's fee, minimum, confirmations and
  quantum.
- ``asset/assetDetail``, ``asset/tradeFee``: withdrawal rules; the maker and taker rates the
  caller pays in each market (its fee tier or override, scaled by the market's own rates).
- ``capital/deposit/hisrec``, ``capital/withdraw/history``: the caller's deposits and
  withdrawals, with Binance's status codes, in a window of at most 90 days (the last 90 days
  unless told).
- ``margin/allPairs``, ``margin/isolated/allPairs``: there is no margin trading here, so no
  pair: ``[]``, which CCXT reads as "no market is marginable".
- ``system/status`` (public): normal, or maintenance while every market is halted.
- ``fiat/orders``: the deposits or withdrawals of the currencies CCXT calls legal money
  (USD, EUR, ...), which CCXT asks there rather than in the coin histories.
- ``/fapi/v1/exchangeInfo``, ``/dapi/v1/exchangeInfo``: there are no futures, so no symbol.

Signed like ``/api/v3``'s ``USER_DATA`` endpoints (``trading.binance.auth``), needing a key
with ``read``; errors are Binance's ``{"code", "msg"}``.
"""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rest_framework.response import Response

from exchange_site.decimals import decimal_to_str
from marketdata.selectors import millis
from trading.binance import errors
from trading.binance import sapi_selectors as selectors
from trading.binance import selectors as binance_selectors
from trading.binance.auth import now_ms
from trading.binance.errors import BinanceError
from trading.binance.formatters import num
from trading.binance.params import INT_RANGE, Params
from trading.binance.selectors import binance_symbol, from_millis
from trading.binance.views import BinanceApi, SignedApi, _schema
from trading.fee_selectors import fee_rates_for_markets
from trading.models import Market
from wallets.models import Asset, Deposit, Withdrawal

# Binance's answer for a window wider than its history endpoints allow.
INTERVAL_TOO_BIG = -1127
HISTORY_WINDOW = timedelta(days=90)
HISTORY_MAX_LIMIT = 1000
HISTORY_MAX_OFFSET = 10**9
# Binance's: at most 45 ids in a withdrawal history's ``idList``.
ID_LIST_MAX = 45
_ID_LIST = re.compile(rf"[0-9]{{1,18}}(,[0-9]{{1,18}}){{0,{ID_LIST_MAX - 1}}}", re.ASCII)
# Binance's "no maximum" for a network's withdrawals: limits here are per user and day, in
# the withdrawal tiers, not per asset.
WITHDRAW_MAX = "9999999999.99999999"

DEPOSIT_STATUS = {Deposit.Status.PENDING: 0, Deposit.Status.CONFIRMED: 1}
# Binance's withdrawal statuses: 0 email sent, 1 cancelled, 2 awaiting approval, 3 rejected,
# 4 processing, 5 failure, 6 completed.
WITHDRAWAL_STATUS = {
    Withdrawal.Status.AWAITING_CONFIRMATION: 0,
    Withdrawal.Status.REQUESTED: 2,
    Withdrawal.Status.AWAITING_SECOND_APPROVAL: 2,
    Withdrawal.Status.APPROVED: 2,
    Withdrawal.Status.REJECTED: 3,
    Withdrawal.Status.PROCESSING: 4,
    Withdrawal.Status.COMPLETED: 6,
    Withdrawal.Status.CANCELLED: 1,
    Withdrawal.Status.EXPIRED: 1,
}


def _statuses_of(mapping: dict, code: int | None) -> tuple[str, ...] | None:
    """Our statuses that Binance's status ``code`` stands for (None: no filter)."""
    if code is None:
        return None
    return tuple(status for status, binance in mapping.items() if binance == code)


def amount(value: Decimal, asset: Asset) -> str:
    """An asset amount with at least the asset's (or Binance's 8) decimal places."""
    return decimal_to_str(value, max(asset.precision, 8))


def wallet_time(moment: datetime | None) -> str | None:
    """Binance's wallet timestamps: ``2019-10-12 11:12:02`` in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else None


# --- formatting --------------------------------------------------------------------------------


def network(asset: Asset) -> dict:
    """The asset's one network: its own chain, named by its code."""
    return {
        "network": asset.code,
        "coin": asset.code,
        "name": asset.name,
        "isDefault": True,
        "depositEnable": asset.is_active,
        "withdrawEnable": asset.is_active,
        "depositDesc": "" if asset.is_active else "Deposits are suspended.",
        "withdrawDesc": "" if asset.is_active else "Withdrawals are suspended.",
        "specialTips": "",
        "specialWithdrawTips": "",
        "resetAddressStatus": False,
        "addressRegex": "",
        "addressRule": "",
        "memoRegex": "",
        "withdrawFee": amount(asset.withdrawal_fee, asset),
        "withdrawMin": amount(asset.min_withdrawal, asset),
        "withdrawMax": WITHDRAW_MAX,
        "withdrawInternalMin": amount(asset.quantum, asset),
        "withdrawIntegerMultiple": decimal_to_str(asset.quantum),
        "minConfirm": asset.confirmations_required,
        "unLockConfirm": 0,
        "sameAddress": False,
        "estimatedArrivalTime": 0,
        "busy": False,
    }


def coin_config(row: selectors.CoinBalance) -> dict:
    asset = row.asset
    return {
        "coin": asset.code,
        "name": asset.name,
        "depositAllEnable": asset.is_active,
        "withdrawAllEnable": asset.is_active,
        "free": amount(row.free, asset),
        "locked": amount(row.locked, asset),
        "freeze": amount(Decimal(0), asset),
        "withdrawing": amount(row.withdrawing, asset),
        "ipoing": amount(Decimal(0), asset),
        "ipoable": amount(Decimal(0), asset),
        "storage": amount(Decimal(0), asset),
        # Every asset, USD too, moves by address here: none is Binance's fiat channel.
        "isLegalMoney": False,
        "trading": asset.is_active,
        "networkList": [network(asset)],
    }


def asset_detail(asset: Asset) -> dict:
    return {
        "minWithdrawAmount": amount(asset.min_withdrawal, asset),
        "depositStatus": asset.is_active,
        "withdrawFee": amount(asset.withdrawal_fee, asset),
        "withdrawStatus": asset.is_active,
        "depositTip": "",
    }


def deposit(item: Deposit) -> dict:
    return {
        "id": str(item.pk),
        "amount": amount(item.amount, item.asset),
        "coin": item.asset.code,
        "network": item.asset.code,
        "status": DEPOSIT_STATUS.get(item.status, 0),
        "address": item.address,
        "addressTag": "",
        "txId": item.tx_id,
        "insertTime": millis(item.created_at),
        "completeTime": millis(item.confirmed_at) if item.confirmed_at else None,
        "transferType": 0,
        "confirmTimes": f"{item.confirmations}/{item.confirmations_required}",
        "unlockConfirm": 0,
        "walletType": 0,
    }


def withdrawal(item: Withdrawal) -> dict:
    result = {
        "id": str(item.pk),
        "amount": amount(item.amount, item.asset),
        "transactionFee": amount(item.fee, item.asset),
        "coin": item.asset.code,
        "status": WITHDRAWAL_STATUS.get(item.status, 2),
        "address": item.address,
        "txId": item.tx_id,
        "applyTime": wallet_time(item.created_at),
        "network": item.asset.code,
        "transferType": 0,
        "info": "",
        "confirmNo": 0,
        "walletType": 0,
        "txKey": "",
    }
    if item.completed_at:
        result["completeTime"] = wallet_time(item.completed_at)
    return result


def trade_fee(market, maker: Decimal, taker: Decimal) -> dict:
    """One market's rates for the caller (``trading.fee_selectors``: the account's tier or
    override scaled by the market's own rates), as the matcher charges them."""
    return {
        "symbol": binance_symbol(market.symbol),
        "makerCommission": num(maker),
        "takerCommission": num(taker),
    }


# --- views -------------------------------------------------------------------------------------


def _window(params: Params) -> tuple[datetime, datetime]:
    """``startTime``/``endTime`` as Binance reads them for wallet history: at most 90 days
    apart, the last 90 days when neither is given."""
    start, end = params.millis("startTime"), params.millis("endTime")
    if start is None and end is None:
        end = from_millis(now_ms())
    try:
        if start is None:
            start = end - HISTORY_WINDOW
        elif end is None:
            end = start + HISTORY_WINDOW
    except OverflowError as exc:  # 90 days past year 9999
        raise errors.illegal_chars("startTime" if end is None else "endTime", INT_RANGE) from exc
    if start > end:
        raise BinanceError(errors.INVALID_PARAMETER, "startTime must be before endTime.")
    if end - start > HISTORY_WINDOW:
        raise BinanceError(INTERVAL_TOO_BIG, "More than 90 days between startTime and endTime.")
    return start, end


def _coin(params: Params) -> str | None:
    return params.text("coin")


class CapitalConfigApi(SignedApi):
    weight = 10

    @_schema("binance_sapi_capital_config")
    def get(self, request):
        rows = selectors.coin_balance_list_for_user(user=request.user)
        return Response([coin_config(row) for row in rows])


class AssetDetailApi(SignedApi):
    @_schema("binance_sapi_asset_detail")
    def get(self, request):
        assets = selectors.asset_list(code=self.params(request).text("asset"))
        return Response({asset.code: asset_detail(asset) for asset in assets})


class TradeFeeApi(SignedApi):
    @_schema("binance_sapi_trade_fee")
    def get(self, request):
        params = self.params(request)
        if params.given("symbol"):
            markets = [self.market(params)]
        else:
            markets = binance_selectors.market_list()
        rates = fee_rates_for_markets(user=request.user, markets=markets)
        return Response([trade_fee(market, maker, taker) for market, maker, taker in rates])


class DepositHistoryApi(SignedApi):
    @_schema("binance_sapi_deposit_history")
    def get(self, request):
        params = self.params(request)
        start, end = _window(params)
        deposits = selectors.deposit_list_for_user_range(
            user=request.user,
            start=start,
            end=end,
            code=_coin(params),
            statuses=_statuses_of(DEPOSIT_STATUS, params.integer("status")),
            tx_id=params.text("txId"),
            offset=params.integer("offset", default=0, high=HISTORY_MAX_OFFSET),
            limit=params.integer("limit", default=1000, low=1, high=HISTORY_MAX_LIMIT),
        )
        return Response([deposit(item) for item in deposits])


class WithdrawHistoryApi(SignedApi):
    @_schema("binance_sapi_withdraw_history")
    def get(self, request):
        params = self.params(request)
        start, end = _window(params)
        ids = None
        if params.given("idList"):
            raw = params.text("idList")
            if not _ID_LIST.fullmatch(raw):
                raise errors.illegal_chars("idList", _ID_LIST.pattern)
            ids = [int(part) for part in raw.split(",")]
        withdrawals = selectors.withdrawal_list_for_user_range(
            user=request.user,
            start=start,
            end=end,
            code=_coin(params),
            statuses=_statuses_of(WITHDRAWAL_STATUS, params.integer("status")),
            ids=ids,
            offset=params.integer("offset", default=0, high=HISTORY_MAX_OFFSET),
            limit=params.integer("limit", default=1000, low=1, high=HISTORY_MAX_LIMIT),
        )
        return Response([withdrawal(item) for item in withdrawals])


# Binance's fiat order statuses, by ours.
FIAT_DEPOSIT_STATUS = {Deposit.Status.CONFIRMED: "Successful"}
FIAT_WITHDRAWAL_STATUS = {
    Withdrawal.Status.COMPLETED: "Successful",
    Withdrawal.Status.REJECTED: "Failed",
    Withdrawal.Status.CANCELLED: "Refunded",
    Withdrawal.Status.EXPIRED: "Refunded",
}
FIAT_WINDOW = timedelta(days=30)
FIAT_MAX_ROWS = 500


def fiat_order(item, *, withdrawals: bool) -> dict:
    """A deposit or withdrawal as a row of Binance's fiat history."""
    if withdrawals:
        status = FIAT_WITHDRAWAL_STATUS.get(item.status, "Processing")
        fee, done = item.fee, item.completed_at
    else:
        status = FIAT_DEPOSIT_STATUS.get(item.status, "Processing")
        fee, done = Decimal(0), item.confirmed_at
    return {
        "orderNo": str(item.pk),
        "fiatCurrency": item.asset.code,
        "indicatedAmount": amount(item.amount, item.asset),
        "amount": amount(item.amount, item.asset),
        "totalFee": amount(fee, item.asset),
        "method": "address",
        "status": status,
        "createTime": millis(item.created_at),
        # A demo deposit is confirmed in the statement that creates it: never before it.
        "updateTime": millis(max(done or item.created_at, item.created_at)),
    }


class FiatOrdersApi(SignedApi):
    """Binance's fiat deposit (``transactionType=0``) or withdrawal (``1``) history: what
    CCXT asks for the currencies it calls legal money (USD, EUR, ...). Here they move by
    address like any coin: the same deposits and withdrawals as ``capital/...``, in
    Binance's fiat shape. The last 30 days unless ``beginTime``/``endTime`` say otherwise;
    ``page`` (from 1) of ``rows`` (1–500, default 100)."""

    @_schema("binance_sapi_fiat_orders")
    def get(self, request):
        params = self.params(request)
        kind = params.integer("transactionType", required=True)
        if kind not in (0, 1):
            raise errors.illegal_chars("transactionType", "0-1")
        start, end = params.millis("beginTime"), params.millis("endTime")
        end = end or from_millis(now_ms())
        start = start or end - FIAT_WINDOW
        page = params.integer("page", default=1, low=1, high=HISTORY_MAX_OFFSET)
        rows = params.limit("rows", default=100, high=FIAT_MAX_ROWS)
        items, total = selectors.fiat_history_for_user(
            user=request.user,
            withdrawals=kind == 1,
            start=start,
            end=end,
            offset=(page - 1) * rows,
            limit=rows,
        )
        return Response(
            {
                "code": "000000",
                "message": "success",
                "data": [fiat_order(item, withdrawals=kind == 1) for item in items],
                "total": total,
                "success": True,
            }
        )


class MarginPairsApi(SignedApi):
    """No margin trading here: no cross or isolated pair."""

    @_schema("binance_sapi_margin_pairs")
    def get(self, request):
        return Response([])


class SystemStatusApi(BinanceApi):
    """Binance's ``system/status`` (public): ``0`` normal, ``1`` system maintenance, which
    here means every market is halted."""

    @_schema("binance_sapi_system_status")
    def get(self, request):
        markets = binance_selectors.market_list()
        halted = bool(markets) and all(m.status == Market.Status.HALTED for m in markets)
        if halted:
            return Response({"status": 1, "msg": "system_maintenance"})
        return Response({"status": 0, "msg": "normal"})


class FuturesExchangeInfoApi(BinanceApi):
    """No futures here: the USDⓈ-M and COIN-M ``exchangeInfo`` list no symbol."""

    @_schema("binance_futures_exchange_info")
    def get(self, request):
        return Response(
            {
                "timezone": "UTC",
                "serverTime": now_ms(),
                "rateLimits": [],
                "exchangeFilters": [],
                "assets": [],
                "symbols": [],
            }
        )
