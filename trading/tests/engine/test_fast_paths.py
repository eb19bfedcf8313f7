"""place's short paths (a limit order that takes, an IOC or FOK one that does not cross, a
market order by quantity) against the general paths they shorten (``_exec_limit``,
``place_market``), switched by ``book._FAST_PATHS``: the same events, command by command,
and the same book after."""

import random

import pytest
from hypothesis import HealthCheck, given, settings

from trading.engine import BUY, FOK, GTC, IOC, SELL, OrderBook
from trading.engine import book as book_module

from .helpers import cancel, limit, market
from .test_properties import sequences


def _run(commands, fast, monkeypatch):
    monkeypatch.setattr(book_module, "_FAST_PATHS", fast)
    book = OrderBook(audit=True)
    out = []
    for i, command in enumerate(commands):
        out.append(book.apply(command))
        if i % 97 == 0:
            book.validate()
    book.validate()
    return out, book


def _assert_same(commands, monkeypatch):
    fast, fast_book = _run(commands, True, monkeypatch)
    general, general_book = _run(commands, False, monkeypatch)
    for command, got, expected in zip(commands, fast, general, strict=True):
        assert got == expected, command
    assert fast_book.resting_orders() == general_book.resting_orders()
    assert fast_book.seq == general_book.seq
    assert fast_book.trade_count == general_book.trade_count > 0


def _stream(seed, count):
    """A thin book's stream: limit orders around one price (many crossing), market orders
    with and without a reserve (some too small), IOC/FOK/post-only, cancels of earlier ids
    (ghosts inside levels), reused ids, five users (self-trades)."""
    rng = random.Random(seed)
    out = []
    next_id = 1
    for _ in range(count):
        r = rng.random()
        user = rng.randrange(1, 6)
        side = BUY if rng.random() < 0.5 else SELL
        qty = rng.randrange(1, 11)
        if r < 0.25 and next_id > 1:
            out.append(cancel(rng.randrange(1, next_id)))
            continue
        order_id = rng.randrange(1, next_id) if r > 0.98 and next_id > 1 else next_id
        next_id += 1
        if r < 0.37:
            reserve = None
            if side == BUY and rng.random() < 0.8:
                reserve = rng.choice((10**9, rng.randrange(1, 2000)))
            tif = rng.choice((IOC, IOC, GTC, FOK))
            out.append(market(order_id, user, side, qty, max_quote=reserve, tif=tif))
        else:
            price = 100 + rng.randrange(-6, 7)
            tif = rng.choice((GTC, GTC, GTC, GTC, IOC, FOK))
            post_only = tif == GTC and rng.random() < 0.05
            out.append(limit(order_id, user, side, price, qty, tif, post_only))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_paths_give_the_general_paths_events_on_a_seeded_stream(seed, monkeypatch):
    _assert_same(_stream(seed, 6000), monkeypatch)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(sequences())
def test_fast_paths_give_the_general_paths_events_on_random_command_sequences(
    monkeypatch, command_list
):
    fast, _ = _run(command_list, True, monkeypatch)
    general, _ = _run(command_list, False, monkeypatch)
    assert fast == general
