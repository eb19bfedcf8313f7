"""The matcher dies with SIGKILL in the middle of a burst and comes back: nothing is lost.

The matcher runs as a real subprocess (``manage.py run_matcher``) on the test database.
After the kill and a restart every command is processed exactly once, and the trades in
the database are exactly those of an uninterrupted replay of the same commands through
the engine: none lost, none doubled.
"""

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from accounts.tests.factories import UserFactory
from trading import engine
from trading.exceptions import OrderNotCancellable
from trading.matcher.convert import MarketScale
from trading.models import Market, Order, OrderCommand, Trade
from trading.services import OrderRequest, order_cancel, order_place
from wallets.ledger_check import ledger_check
from wallets.models import Asset
from wallets.services import deposit_demo_create

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 5000
THREADS = 4


def start_matcher() -> subprocess.Popen:
    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "0",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_matcher", "--markets", "BTC-USD", "--batch-size", "50"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def processed_commands() -> int:
    return OrderCommand.objects.filter(processed_at__isnull=False).count()


def wait_until(condition, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


@pytest.fixture
def market(settings):
    settings.DEMO_DEPOSITS = True
    settings.DEMO_DEPOSIT_MAX_PER_REQUEST = {"*": "100000000"}
    settings.DEMO_DEPOSIT_MAX_PER_DAY = {"*": "100000000"}
    usd = Asset.objects.create(code="USD", name="US Dollar", precision=2)
    btc = Asset.objects.create(code="BTC", name="Bitcoin", precision=8)
    return Market.objects.create(
        symbol="BTC-USD",
        base_asset=btc,
        quote_asset=usd,
        tick_size=Decimal("1"),
        lot_size=Decimal("0.001"),
        min_qty=Decimal("0.001"),
        max_qty=Decimal("100"),
        min_notional=Decimal("1"),
    )


def place_burst(users, count: int, seed: int, placed_counter: list[int], errors: list) -> None:
    rng = random.Random(seed)
    mine: list[tuple] = []
    try:
        for _ in range(count):
            user = rng.choice(users)
            if mine and rng.random() < 0.2:
                owner, order_id = mine.pop(rng.randrange(len(mine)))
                # An order done already refuses the cancel (409): fine here.
                with contextlib.suppress(OrderNotCancellable):
                    order_cancel(user=owner, order_id=order_id)
                continue
            side = rng.choice(("buy", "sell"))
            order, _ = order_place(
                user=user,
                request=OrderRequest(
                    symbol="BTC-USD",
                    side=side,
                    order_type="limit",
                    quantity=Decimal("0.01") * rng.randint(1, 20),
                    price=Decimal(rng.randint(990, 1010)),
                    time_in_force=rng.choice(("GTC", "GTC", "GTC", "IOC")),
                ),
            )
            mine.append((user, order.pk))
            placed_counter[0] += 1
    except Exception as exc:
        errors.append(exc)
    finally:
        connection.close()


def replay_trades(market: Market) -> list[tuple]:
    """Run every processed command again, in the order the matcher ran them (batch, id),
    through a fresh engine."""
    scale = MarketScale(market.tick_size, market.lot_size)
    book = engine.OrderBook()
    trades = []
    commands = (
        OrderCommand.objects.filter(market=market).select_related("order").order_by("batch", "id")
    )
    for command in commands:
        order = command.order
        if command.kind == OrderCommand.Kind.CANCEL:
            events = book.cancel(order.pk)
        else:
            events = book.place_limit(
                order.pk,
                order.user_id,
                order.side,
                scale.price_to_ticks(order.price),
                scale.qty_to_lots(order.quantity),
                order.time_in_force,
            )
        trades += [
            (e[0], e[1], scale.ticks_to_price(e[2]), scale.lots_to_qty(e[3]))
            for e in events
            if e[-1] == engine.TRADE
        ]
    return trades


@pytest.mark.django_db(transaction=True)
def test_sigkill_mid_burst_loses_and_doubles_nothing(market):
    users = [UserFactory() for _ in range(10)]
    for user in users:
        deposit_demo_create(user=user, asset_code="USD", amount=Decimal("10000000"))
        deposit_demo_create(user=user, asset_code="BTC", amount=Decimal("10000"))
    placed, errors = [0], []
    threads = [
        threading.Thread(target=place_burst, args=(users, ORDERS // THREADS, seed, placed, errors))
        for seed in range(THREADS)
    ]
    matcher = start_matcher()
    try:
        for thread in threads:
            thread.start()
        # Kill it mid-burst: once it has committed batches and more commands are waiting.
        wait_until(
            lambda: processed_commands() >= 300 or errors, 120, "the matcher never got going"
        )
        assert not errors, errors
        matcher.send_signal(signal.SIGKILL)
        matcher.wait(timeout=10)
        killed_at = processed_commands()
        matcher = start_matcher()
        for thread in threads:
            thread.join()
        assert not errors, errors
        total = OrderCommand.objects.count()
        wait_until(lambda: processed_commands() == total, 180, "commands left unprocessed")
        matcher.send_signal(signal.SIGTERM)
        assert matcher.wait(timeout=30) == 0, matcher.stderr.read().decode()[-2000:]
    finally:
        if matcher.poll() is None:
            matcher.kill()

    assert 0 < killed_at < total
    assert not Order.objects.filter(status=Order.Status.NEW).exists()
    stored = list(
        Trade.objects.filter(market=market)
        .order_by("id")
        .values_list("buy_order_id", "sell_order_id", "taker_side", "price", "quantity")
    )
    replayed = replay_trades(market)
    assert len(stored) == len(replayed) > 0
    for (buy_id, sell_id, taker_side, price, quantity), (maker, taker, r_price, r_qty) in zip(
        stored, replayed, strict=True
    ):
        taker_id = buy_id if taker_side == "buy" else sell_id
        maker_id = sell_id if taker_side == "buy" else buy_id
        assert (maker_id, taker_id, price, quantity) == (maker, taker, r_price, r_qty)
    report = ledger_check()
    assert report.ok, report.violations[:5]
