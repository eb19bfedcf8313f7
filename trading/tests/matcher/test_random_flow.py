"""Many traders at once, then restarts: the books, the money and the trades stay consistent
(ARCHITECTURE §3 crash and restore, §4 invariants 1–5)."""

import random
import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction

from trading.matcher.market import MarketMatcher
from trading.models import Market, Order, OrderCommand, Trade
from trading.tests.helpers import assert_ledger_ok, drain
from trading.tests.matcher.random_orders import random_flow
from wallets.models import Balance

D = Decimal


def book_of(matcher: MarketMatcher):
    return matcher.book.resting_orders(), matcher.book.stop_orders(), matcher.book.seq


def db_book(market: Market) -> dict[int, Decimal]:
    """Remaining quantity of every order resting in the database."""
    return {
        pk: quantity - filled
        for pk, quantity, filled in Order.objects.filter(
            market=market, status__in=["open", "partially_filled"]
        ).values_list("pk", "quantity", "filled_quantity")
    }


@pytest.mark.django_db(transaction=True)
def test_twenty_traders_placing_and_cancelling_at_once_leave_the_ledger_clean(market, trader):
    users = [trader(market, usd="1000000", btc="5000") for _ in range(20)]
    counts: list[dict | Exception] = [{}] * len(users)
    placing = threading.Barrier(len(users))

    def place_all(i):
        try:
            placing.wait(timeout=10)
            counts[i] = random_flow(users[i], random.Random(i), steps=100)
        except Exception as exc:
            counts[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=place_all, args=(i,)) for i in range(len(users))]
    for thread in threads:
        thread.start()
    # The matcher runs while the orders arrive, as in production.
    matcher = MarketMatcher(market)
    while any(thread.is_alive() for thread in threads):
        if matcher.run_batch(200) is None:
            threading.Event().wait(0.01)
    for thread in threads:
        thread.join()
    drain(market, matcher)

    assert not [c for c in counts if isinstance(c, Exception)], counts
    assert sum(c["placed"] + c["cancels"] + c["refused"] for c in counts) == 2000
    placed = sum(c["placed"] for c in counts)
    assert Order.objects.count() == placed
    assert OrderCommand.objects.filter(kind="place").count() == placed
    # A repeated cancel of an order still waiting for its first one queues nothing.
    cancels = OrderCommand.objects.filter(kind="cancel").count()
    assert 0 < cancels <= sum(c["cancels"] for c in counts)
    assert not OrderCommand.objects.filter(processed_at__isnull=True).exists()
    assert not Order.objects.filter(status="new").exists()
    statuses = set(Order.objects.values_list("status", flat=True))
    assert {"filled", "cancelled", "expired", "open"} <= statuses, statuses
    assert Trade.objects.count() > 100
    assert_ledger_ok()
    # The live book is what the database says rests, and a restore rebuilds it exactly.
    resting, _stops, _seq = book_of(matcher)
    assert {r.order_id: matcher.scale.lots_to_qty(r.qty_lots) for r in resting} == db_book(market)
    restored = MarketMatcher(market)
    restored.restore()
    assert book_of(restored) == book_of(matcher)


def outcome(market: Market) -> dict:
    """Everything a run of the matcher decides, without ids the database hands out."""
    market.refresh_from_db()
    return {
        "trades": list(
            Trade.objects.order_by("id").values_list(
                "buy_order_id",
                "sell_order_id",
                "price",
                "quantity",
                "taker_side",
                "buyer_fee",
                "seller_fee",
            )
        ),
        "orders": list(
            Order.objects.order_by("id").values_list(
                "id",
                "status",
                "reason",
                "filled_quantity",
                "filled_quote",
                "fee_total",
                "reserved",
                "rested_seq",
            )
        ),
        "balances": list(
            Balance.objects.order_by("user_id", "asset_id").values_list(
                "user_id", "asset_id", "available", "locked"
            )
        ),
        "market": (market.seq, market.last_price),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("restarts", ["once_at_half", "before_every_batch"])
def test_a_restarted_matcher_decides_exactly_what_an_uninterrupted_one_does(
    market, trader, restarts
):
    users = [trader(market, usd="1000000", btc="5000") for _ in range(8)]
    rng = random.Random(2024)
    # A book to start from, matched; then a backlog of commands nobody has matched yet.
    for user in users:
        random_flow(user, rng, steps=15, cancel_share=0)
    drain(market)
    for _ in range(6):
        for user in users:
            random_flow(user, rng, steps=12)
    pending = OrderCommand.objects.filter(processed_at__isnull=True).count()
    assert pending > 400

    before_matching = transaction.savepoint()
    drain(market, batch_size=pending)
    uninterrupted = outcome(market)
    assert_ledger_ok()
    transaction.savepoint_rollback(before_matching)
    assert OrderCommand.objects.filter(processed_at__isnull=True).count() == pending

    matcher = MarketMatcher(market)
    processed = 0
    while True:
        if restarts == "before_every_batch" or (
            restarts == "once_at_half" and processed >= pending // 2 > processed - 37
        ):
            matcher = MarketMatcher(market)  # the old one is thrown away with its book
        result = matcher.run_batch(37)
        if result is None:
            break
        processed += result.commands
    restarted = outcome(market)

    assert processed == pending
    assert len(restarted["trades"]) == len(uninterrupted["trades"]) > 50
    assert restarted == uninterrupted
    assert_ledger_ok()
