"""The demo market maker and taker: in-process against the real database and matcher."""

import random
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from trading.marketmaker import (
    MAKER,
    TAKER,
    MarketMaker,
    Rules,
    grid_step,
    ladder,
    walk,
)
from trading.models import Order, OrderCommand, Trade
from trading.tests.helpers import assert_ledger_ok, drain
from wallets.models import Balance, Deposit
from wallets.selectors import fee_account_get

D = Decimal
RULES = Rules(D("0.01"), D("0.00001"), D("0.00001"), D("1000"), D("1"))


@pytest.fixture
def demo_deposits(settings):
    settings.DEMO_DEPOSITS = True


@pytest.fixture
def maker(market, demo_deposits, fee_account):
    bots = MarketMaker(symbols=["BTC-USD"], levels=5, spread_bps=10, step_bps=5, seed=7)
    bots.setup()
    return bots


def live_orders(user, market):
    return list(
        Order.objects.filter(user=user, market=market, status__in=Order.LIVE).order_by("price")
    )


def test_ladder_is_two_sided_around_the_reference_on_the_tick_grid():
    quotes = ladder(
        reference=D("50000"),
        rules=RULES,
        spread_bps=10,
        step=D("25"),
        levels=4,
        bid_budget=D("40000"),
        ask_budget=D("0.8"),
    )

    bids = [q for q in quotes if q.side == "buy"]
    asks = [q for q in quotes if q.side == "sell"]
    assert [q.price for q in bids] == [D("49975"), D("49950"), D("49925"), D("49900")]
    assert [q.price for q in asks] == [D("50025"), D("50050"), D("50075"), D("50100")]
    assert all(q.quantity == D("0.2") for q in asks)
    # 10,000 USD a level, rounded down to the lot.
    assert bids[0].quantity == D("0.20010")
    assert all(q.price * q.quantity <= D("10000") for q in bids)


def test_ladder_on_a_one_tick_grid_drops_levels_below_the_minimums():
    quotes = ladder(
        reference=D("1.00"),
        rules=RULES,
        spread_bps=0,
        step=D("0.01"),
        levels=3,
        bid_budget=D("30"),
        ask_budget=D("0.00002"),  # under min notional at every level
    )

    assert [q.price for q in quotes] == [D("1.00"), D("0.99"), D("0.98")]
    assert all(q.side == "buy" for q in quotes)


def test_grid_step_is_on_the_tick_and_at_least_one_tick():
    assert grid_step(D("50000"), step_bps=5, tick=D("0.01")) == D("25")
    assert grid_step(D("0.06"), step_bps=5, tick=D("0.000001")) == D("0.000030")
    assert grid_step(D("1"), step_bps=1, tick=D("0.01")) == D("0.01")


def test_walk_moves_in_whole_ticks_and_never_below_one():
    rng = random.Random(1)
    path = [5_000_000]
    for _ in range(200):
        path.append(walk(path[-1], volatility_bps=5, rng=rng))
    assert len(set(path)) > 100
    assert all(isinstance(step, int) and step >= 1 for step in path)
    assert walk(1, volatility_bps=10_000, rng=random.Random(3)) >= 1


def test_setup_registers_and_funds_the_bots_once(maker, market):
    assert maker.maker.email == MAKER[0]
    assert maker.taker.email == TAKER[0]
    assert maker.maker.has_usable_password()
    deposits = Deposit.objects.filter(is_demo=True, user__in=[maker.maker, maker.taker])
    assert deposits.count() == 4  # USD and BTC for each bot
    assert maker.markets[0].reference == D("50000")

    again = MarketMaker(symbols=["BTC-USD"], seed=1)
    again.setup()

    assert again.maker == maker.maker
    assert deposits.count() == 4


def test_requote_places_a_two_sided_ladder_and_cancels_levels_that_moved(maker, market):
    state = maker.markets[0]

    maker.requote(state)
    drain(market)

    first = live_orders(maker.maker, market)
    bids = [o for o in first if o.side == "buy"]
    asks = [o for o in first if o.side == "sell"]
    assert len(bids) == 5
    assert len(asks) == 5
    assert max(o.price for o in bids) < state.reference < min(o.price for o in asks)
    assert all(o.post_only and o.status == Order.Status.OPEN for o in first)

    state.reference_ticks += 3_000  # +30 USD: one bid level and two ask levels move
    maker.requote(state)

    cancelled_prices = {D("49875"), D("50025"), D("50050")}
    moved = {o.id for o in first if o.price in cancelled_prices}
    cancels = OrderCommand.objects.filter(kind=OrderCommand.Kind.CANCEL)
    assert set(cancels.values_list("order_id", flat=True)) == moved
    drain(market)
    now = live_orders(maker.maker, market)
    assert [o.price for o in now if o.side == "buy"] == [
        D("49900"), D("49925"), D("49950"), D("49975"), D("50000"),
    ]  # fmt: skip
    assert [o.price for o in now if o.side == "sell"] == [
        D("50075"), D("50100"), D("50125"), D("50150"), D("50175"),
    ]  # fmt: skip
    assert Order.objects.filter(pk__in=moved, status=Order.Status.CANCELLED).count() == 3

    maker.requote(state)  # nothing moved: nothing to do

    assert OrderCommand.objects.filter(processed_at__isnull=True).count() == 0
    assert_ledger_ok()


def test_the_taker_trades_against_the_ladder_and_both_pay_fees(maker, market):
    maker.requote(maker.markets[0])
    drain(market)

    placed = [maker.take() for _ in range(12)]
    drain(market)

    assert any(placed)
    trades = Trade.objects.filter(market=market)
    assert trades.exists()
    assert all({t.buyer_id, t.seller_id} == {maker.maker.pk, maker.taker.pk} for t in trades)
    assert all(t.buyer_fee > 0 and t.seller_fee > 0 for t in trades)
    assert Balance.objects.filter(user=fee_account_get(), available__gt=0).exists()
    assert_ledger_ok()


def test_step_requotes_and_takes_when_due_then_withdraw_cancels_everything(maker, market):
    next_due = maker.step(0.0)
    drain(market)

    assert 0 < next_due <= maker.interval
    assert len(live_orders(maker.maker, market)) == 10

    maker.withdraw_quotes()
    drain(market)

    assert live_orders(maker.maker, market) == []
    assert live_orders(maker.taker, market) == []
    assert_ledger_ok()


def test_the_command_refuses_an_unknown_market(market, demo_deposits, fee_account):
    with pytest.raises(CommandError, match="NOPE-USD"):
        call_command("run_marketmaker", "--markets", "NOPE-USD")
