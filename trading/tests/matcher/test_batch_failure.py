"""A batch whose transaction fails leaves nothing behind; the next run redoes it whole
(ARCHITECTURE §3 crash: rebuild from the database and re-run the unprocessed commands)."""

from decimal import Decimal

import pytest
from django.db import DatabaseError

from trading.matcher import market as market_module
from trading.matcher.market import MarketMatcher
from trading.models import Order, OrderCommand, Trade
from trading.tests.helpers import assert_ledger_ok, balance_of, drain, place, reload, state

pytestmark = pytest.mark.django_db

D = Decimal


def test_a_failed_batch_is_rolled_back_whole_and_redone_after_a_restore(
    market, trader, usd, btc, monkeypatch
):
    buyer = trader(market, usd="1000")
    seller = trader(market, btc="1")
    resting = place(buyer, side="buy", price="100", quantity="1")
    drain(market)
    sell = place(seller, side="sell", price="100", quantity="1")
    other = place(buyer, side="buy", price="90", quantity="1")
    before = state()
    real_apply = market_module.balance_changes_apply

    def fail(**kwargs):
        raise DatabaseError("the database went away mid-batch")

    monkeypatch.setattr(market_module, "balance_changes_apply", fail)
    matcher = MarketMatcher(market)

    with pytest.raises(DatabaseError):
        matcher.run_batch(500)

    assert state() == before
    assert matcher.book is None  # thrown away: the next batch restores from the database
    assert OrderCommand.objects.filter(processed_at__isnull=True).count() == 2
    assert (reload(resting).status, reload(sell).status) == ("open", "new")

    monkeypatch.setattr(market_module, "balance_changes_apply", real_apply)
    drain(market, matcher)

    assert Trade.objects.count() == 1
    assert (reload(resting).status, reload(sell).status) == ("filled", "filled")
    assert reload(other).status == Order.Status.OPEN
    assert balance_of(seller, usd) == (D("99.8"), D(0))
    assert balance_of(buyer, btc) == (D("0.999"), D(0))
    assert_ledger_ok()
