"""Fee rates in Binance's shapes (ARCHITECTURE §4 "Fees"): ``/api/v3/account``'s
``commissionRates``, ``/api/v3/account/commission`` and ``order/test`` with
``computeCommissionRates``. The rates are ``trading.fee_selectors``', the ones the matcher
charges. There is no tax and no fee-asset discount here: those parts are zero (disabled)."""

from decimal import Decimal

from django.db.models import Max

from accounts.models import User
from trading.binance.formatters import ZERO, num
from trading.binance.selectors import binance_symbol
from trading.fee_selectors import fee_rates_for_users
from trading.models import Market

NO_DISCOUNT = {
    "enabledForAccount": False,
    "enabledForSymbol": False,
    "discountAsset": "BNB",
    "discount": ZERO,
}


def account_rates(user: User) -> tuple[Decimal, Decimal]:
    """The account's own (maker, taker) rates: its tier's or override's, as it pays them in a
    market at the base tier's rates (the default). Without a schedule each market's own
    rates apply: the highest of them is reported."""
    maker, taker = fee_rates_for_users(user_ids=[user.pk])[user.pk].standard()
    if maker is None or taker is None:
        highest = Market.objects.aggregate(maker=Max("maker_fee"), taker=Max("taker_fee"))
        # No market listed yet: Max() is None, and the formatters take Decimals only.
        maker = maker if maker is not None else highest["maker"] or Decimal(0)
        taker = taker if taker is not None else highest["taker"] or Decimal(0)
    return maker, taker


def _rates(maker: Decimal, taker: Decimal) -> dict:
    return {"maker": num(maker), "taker": num(taker), "buyer": ZERO, "seller": ZERO}


def account_commission(market: Market, maker: Decimal, taker: Decimal) -> dict:
    """``GET /api/v3/account/commission``: the caller's rates in one market."""
    return {
        "symbol": binance_symbol(market.symbol),
        "standardCommission": _rates(maker, taker),
        "specialCommission": _rates(Decimal(0), Decimal(0)),
        "taxCommission": _rates(Decimal(0), Decimal(0)),
        "discount": NO_DISCOUNT,
    }


def order_test_commission(maker: Decimal, taker: Decimal) -> dict:
    """``POST /api/v3/order/test`` with ``computeCommissionRates=true``."""
    zero = {"maker": ZERO, "taker": ZERO}
    return {
        "standardCommissionForOrder": {"maker": num(maker), "taker": num(taker)},
        "specialCommissionForOrder": zero,
        "taxCommissionForOrder": zero,
        "discount": NO_DISCOUNT,
    }
