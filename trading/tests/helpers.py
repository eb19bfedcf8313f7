"""Order entry, matcher drives and assertions shared by the trading tests."""

from dataclasses import dataclass
from decimal import Decimal

from testsupport.helpers import (  # noqa: F401 (re-exported)
    assert_error,
    assert_ledger_ok,
    run_concurrently,
)
from trading import services
from trading.matcher.market import MarketMatcher
from trading.models import Market, Order, OrderCommand, Trade
from wallets.models import Balance, LedgerEntry

ORDER_FIELDS = ("quantity", "price", "stop_price", "quote_quantity", "iceberg_quantity")


def place(user, symbol: str = "BTC-USD", **fields) -> Order:
    """Accept an order through the service; amounts may be given as strings."""
    for name in ORDER_FIELDS:
        if fields.get(name) is not None:
            fields[name] = Decimal(str(fields[name]))
    fields.setdefault("order_type", Order.Type.LIMIT)
    order, created = services.order_place(
        user=user, request=services.OrderRequest(symbol=symbol, **fields)
    )
    assert created
    return order


def drain(market: Market, matcher: MarketMatcher | None = None, batch_size: int = 500):
    """Run the market's matcher until no command is pending; returns the matcher."""
    matcher = matcher or MarketMatcher(market)
    while matcher.run_batch(batch_size) is not None:
        pass
    return matcher


def reload(order: Order) -> Order:
    order.refresh_from_db()
    return order


def balance_of(user, asset) -> tuple[Decimal, Decimal]:
    """(available, locked); (0, 0) when the account never held the asset."""
    row = Balance.objects.filter(user=user, asset=asset).values_list("available", "locked").first()
    return row if row is not None else (Decimal(0), Decimal(0))


@dataclass(frozen=True)
class State:
    """Everything a refused request must leave untouched."""

    balances: tuple
    ledger_entries: int
    orders: int
    commands: int
    trades: int


def state() -> State:
    return State(
        balances=tuple(
            Balance.objects.order_by("user_id", "asset_id").values_list(
                "user_id", "asset_id", "available", "locked"
            )
        ),
        ledger_entries=LedgerEntry.objects.count(),
        orders=Order.objects.count(),
        commands=OrderCommand.objects.count(),
        trades=Trade.objects.count(),
    )
