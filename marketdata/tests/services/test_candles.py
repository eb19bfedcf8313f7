"""Candles follow the trades inside the matcher's transaction and agree with a rebuild
from the trades, whatever the batches, the clock or a crash do (ARCHITECTURE §3, §6)."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError
from django.db.models import Sum

from marketdata.models import INTERVAL_SECONDS, Candle
from marketdata.services import candles_apply_trades, candles_rebuild
from marketdata.tests.fixtures import candle_rows, fake_trade, spread_matcher_clock
from trading.matcher import market as market_module
from trading.matcher.market import MarketMatcher
from trading.models import Trade
from trading.tests.factories import MarketFactory
from trading.tests.helpers import assert_ledger_ok, drain, place
from trading.tests.matcher.random_orders import random_flow
from wallets.tests.factories import AssetFactory

pytestmark = pytest.mark.django_db

D = Decimal
T0 = datetime(2024, 5, 1, 23, 59, 59, 999_999, tzinfo=UTC)


def one_candle(market, interval: str) -> tuple:
    return (
        Candle.objects.filter(market=market, interval=interval)
        .values_list("open", "high", "low", "close", "volume", "quote_volume", "trade_count")
        .get()
    )


def test_a_batch_sets_open_high_low_close_volumes_and_count_per_bucket(market):
    candles = candles_apply_trades(
        market_id=market.pk,
        trades=[
            fake_trade(market, "100", "1", T0),
            fake_trade(market, "90", "0.5", T0),
            fake_trade(market, "120", "0.25", T0),
            fake_trade(market, "110", "2", T0),
        ],
    )

    expected = (D(100), D(120), D(90), D(110), D("3.75"), D(395), 4)
    assert {one_candle(market, interval) for interval in INTERVAL_SECONDS} == {expected}
    assert {(c.interval, c.open_time) for c in candles} == {
        (interval, datetime(2024, 5, 1, 23, 59, tzinfo=UTC) - timedelta(seconds=seconds - 60))
        for interval, seconds in INTERVAL_SECONDS.items()
    }
    assert {c.trade_count for c in candles} == {4}


def test_later_batches_widen_high_low_set_close_and_add_volumes(market):
    candles_apply_trades(market_id=market.pk, trades=[fake_trade(market, "100", "1", T0)])
    candles_apply_trades(market_id=market.pk, trades=[fake_trade(market, "130", "1", T0)])
    candles = candles_apply_trades(
        market_id=market.pk,
        trades=[fake_trade(market, "80", "1", T0), fake_trade(market, "95", "0.5", T0)],
    )

    expected = (D(100), D(130), D(80), D(95), D("3.5"), D("357.5"), 4)
    assert one_candle(market, "1m") == expected
    assert {
        (c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trade_count) for c in candles
    } == {expected}


def test_trades_on_both_sides_of_a_bucket_edge_go_to_their_own_buckets(market):
    edge = datetime(2024, 5, 2, tzinfo=UTC)
    candles_apply_trades(
        market_id=market.pk,
        trades=[fake_trade(market, "100", "1", T0), fake_trade(market, "200", "1", edge)],
    )

    for interval in INTERVAL_SECONDS:
        rows = Candle.objects.filter(market=market, interval=interval).order_by("open_time")
        assert [(c.close, c.open_time.minute) for c in rows][-1] == (D(200), 0)
        assert len(rows) == 2


def test_an_empty_batch_writes_nothing(market):
    assert candles_apply_trades(market_id=market.pk, trades=[]) == []
    assert not Candle.objects.exists()


def test_candles_after_a_random_run_equal_a_rebuild_from_the_trades(market, trader, monkeypatch):
    moments = spread_matcher_clock(monkeypatch, random.Random(7))
    users = [trader(market, usd="1000000", btc="5000") for _ in range(6)]
    rng = random.Random(2024)
    for round_ in range(4):
        for user in users:
            random_flow(user, rng, steps=20)
        drain(market, batch_size=[3, 11, 40, 500][round_])
    trades = Trade.objects.filter(market=market).count()
    assert trades > 150
    assert len({moment.date() for moment in moments}) > 2  # many buckets of every size
    incremental = candle_rows()

    call_command("rebuild_candles")

    assert candle_rows() == incremental
    for interval in INTERVAL_SECONDS:
        counted = Candle.objects.filter(interval=interval).aggregate(n=Sum("trade_count"))["n"]
        assert counted == trades
    assert Candle.objects.filter(interval="1m").count() > 20
    assert_ledger_ok()


def test_a_batch_failing_after_its_candles_leaves_no_candle_change(market, trader, monkeypatch):
    buyer, seller = trader(market, usd="100000"), trader(market, btc="10")
    place(seller, side="sell", price="100", quantity="1")
    place(buyer, side="buy", price="100", quantity="0.4")
    drain(market)
    place(buyer, side="buy", price="100", quantity="0.6")
    place(seller, side="sell", price="90", quantity="1")
    place(buyer, side="buy", price="95", quantity="1")
    before = candle_rows()
    assert before
    real_apply = market_module.balance_changes_apply

    def crash(**kwargs):
        raise DatabaseError("the database went away after the candles")

    monkeypatch.setattr(market_module, "balance_changes_apply", crash)
    matcher = MarketMatcher(market)
    with pytest.raises(DatabaseError):
        matcher.run_batch(500)

    assert candle_rows() == before
    assert Trade.objects.count() == 1

    monkeypatch.setattr(market_module, "balance_changes_apply", real_apply)
    drain(market, matcher)
    assert Trade.objects.count() == 3
    after = candle_rows()
    candles_rebuild()
    assert candle_rows() == after
    assert one_candle(market, "1h")[-1] == 3


def test_rebuild_of_one_market_and_interval_leaves_the_other_candles_alone(market, trader):
    other = MarketFactory(
        symbol="ETH-USD",
        base_asset=AssetFactory(code="ETH", precision=8),
        quote_asset=market.quote_asset,
    )
    candles_apply_trades(market_id=other.pk, trades=[fake_trade(other, "100", "1", T0)])
    buyer, seller = trader(market, usd="1000"), trader(market, btc="1")
    place(seller, side="sell", price="100", quantity="0.5")
    place(buyer, side="buy", price="100", quantity="0.5")
    drain(market)
    Candle.objects.update(volume=D(7))  # damage every candle
    damaged = candle_rows()

    call_command("rebuild_candles", "--market", "btc/usd", "--interval", "5m")

    repaired = {(row[0], row[1]) for row in set(candle_rows()) - set(damaged)}
    assert repaired == {(market.pk, "5m")}
    assert one_candle(market, "5m")[4] == D("0.5")


def test_rebuild_refuses_an_unknown_market(market):
    with pytest.raises(CommandError, match="Unknown market"):
        call_command("rebuild_candles", "--market", "DOGE-USD")
