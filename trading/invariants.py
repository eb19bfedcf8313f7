"""ARCHITECTURE §4 invariant 5, run by ``check_ledger`` with the money invariants.

Every trade has a buy and a sell order of its own market, owned by its buyer and seller;
an order's filled quantity equals the sum of its trades; an order that is done reserves
nothing.
"""

from django.db.models import F, Q

from exchange_site.db import decimal_sums
from exchange_site.decimals import decimal_to_str
from trading.models import Order, Trade

MAX_LISTED = 100


def check_trades_and_orders(report) -> None:
    mismatched = Trade.objects.filter(
        ~Q(buy_order__market_id=F("market_id"))
        | ~Q(sell_order__market_id=F("market_id"))
        | ~Q(buy_order__user_id=F("buyer_id"))
        | ~Q(sell_order__user_id=F("seller_id"))
        | ~Q(buy_order__side=Order.Side.BUY)
        | ~Q(sell_order__side=Order.Side.SELL)
    ).values_list("pk", flat=True)[:MAX_LISTED]
    for trade_id in mismatched:
        report.add(5, "trade does not match its orders' market, owners or sides", trade_id=trade_id)

    bought = {
        order_id: total
        for (order_id,), (total,) in decimal_sums(
            Trade.objects.all(), ["buy_order_id"], ["quantity"]
        ).items()
    }
    sold = {
        order_id: total
        for (order_id,), (total,) in decimal_sums(
            Trade.objects.all(), ["sell_order_id"], ["quantity"]
        ).items()
    }
    filled_orders = Order.objects.filter(filled_quantity__gt=0).values_list("pk", "filled_quantity")
    traded = {**bought, **sold}
    seen = set()
    for order_id, filled in filled_orders.iterator(chunk_size=5000):
        seen.add(order_id)
        if traded.get(order_id) != filled:
            report.add(
                5,
                "order's filled quantity differs from the sum of its trades",
                order_id=order_id,
                filled=decimal_to_str(filled),
                traded=decimal_to_str(traded[order_id]) if order_id in traded else None,
            )
    for order_id in sorted(set(traded) - seen)[:MAX_LISTED]:
        report.add(5, "order has trades but no filled quantity", order_id=order_id)

    done_but_reserving = Order.objects.filter(status__in=Order.FINAL, reserved__gt=0).values_list(
        "pk", "status", "reserved"
    )[:MAX_LISTED]
    for order_id, status, reserved in done_but_reserving:
        report.add(
            5,
            "a done order still reserves funds",
            order_id=order_id,
            status=status,
            reserved=decimal_to_str(reserved),
        )
