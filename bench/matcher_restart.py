"""Benchmark a matcher restart at scale: from starting ``run_matcher`` to matching again.

    .venv/bin/python bench/matcher_restart.py [--orders 100000] [--markets 4] [--runs 3]

Builds ``--orders`` open orders spread over ``--markets`` markets: placed through the real
order-entry service (``order_place_batch``, several processes), then rested by the matcher's
own batches in this process, so every order, reserve and ledger line is what production
would hold. Then, per run: one crossing pair of orders per market is queued while no matcher
runs, ``manage.py run_matcher`` is started as a subprocess, and the clock stops when the
database holds the trade of every market. That is the whole restart a user waits for:
interpreter and Django start-up, the advisory locks, reading every live order, rebuilding the
books, publishing their snapshots, and the first batch. The matcher is stopped (SIGTERM)
after each run.

Reported beside it: the same restore done in this process, market by market
(``MarketMatcher.restore``: the query and the book rebuild, no start-up), and the bare
start-up of a ``manage.py`` process that does nothing (``check --deploy`` is not run: the
command is ``manage.py shell -c pass``), so the three figures show where the time goes. The
matcher's peak RSS after its restore is read from ``/proc``. Prints one JSON line. It DROPS
and recreates its own database, ``BENCH_DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/exchange_bench_restart``).
"""

import argparse
import json
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from decimal import Decimal

import benchdb

BENCH_DATABASE_URL = benchdb.setup(database="exchange_bench_restart", redis_db=15)

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.models import User  # noqa: E402
from trading.matcher.market import MarketMatcher  # noqa: E402
from trading.models import Market, Order, OrderCommand, Trade  # noqa: E402
from trading.services import OrderRequest, order_place, order_place_batch  # noqa: E402
from wallets.ledger_check import ledger_check  # noqa: E402
from wallets.models import Asset  # noqa: E402
from wallets.services import deposit_demo_create  # noqa: E402

MID_TICKS = 5_000_000  # 50,000.00 at a 0.01 tick
USERS_PER_MARKET = 10
BATCH = 20  # order_place_batch's maximum
TRADE_WAIT_SECONDS = 120


def setup_markets(count: int) -> tuple[list[Market], list[User]]:
    """``count`` markets R0-USD, R1-USD, ... and funded users who trade in all of them."""
    call_command("migrate", verbosity=0)
    settings.DEMO_DEPOSITS = True
    settings.DEMO_DEPOSIT_MAX_PER_REQUEST = {"*": "1000000000000"}
    settings.DEMO_DEPOSIT_MAX_PER_DAY = {"*": "1000000000000000"}
    usd, _ = Asset.objects.get_or_create(code="USD", defaults={"name": "US Dollar", "precision": 2})
    markets = []
    for n in range(count):
        base, _ = Asset.objects.get_or_create(
            code=f"R{n}", defaults={"name": f"Restart coin {n}", "precision": 8}
        )
        market, _ = Market.objects.update_or_create(
            symbol=f"R{n}-USD",
            defaults={
                "base_asset": base,
                "quote_asset": usd,
                "tick_size": Decimal("0.01"),
                "lot_size": Decimal("0.00001"),
                "min_qty": Decimal("0.00001"),
                "max_qty": Decimal("1000"),
                "min_notional": Decimal("0.01"),
                "status": Market.Status.TRADING,
            },
        )
        markets.append(market)
    users = []
    # The last user only takes (queue_crossing_pairs) and never rests an order.
    for n in range(USERS_PER_MARKET * count + 1):
        user, _ = User.objects.get_or_create(
            email=f"restart{n}@bench.example", defaults={"username": f"restart{n}"}
        )
        deposit_demo_create(user=user, asset_code="USD", amount=Decimal("100000000000"))
        for market in markets:
            deposit_demo_create(user=user, asset_code=market.base_asset.code, amount=Decimal("1e6"))
        users.append(user)
    return markets, users


def _place_share(symbols: list[str], user_ids: list[int], count: int, seed: int) -> None:
    """Place ``count`` resting limit orders (none crossing) in batches of 20."""
    rng = random.Random(seed)
    users = list(User.objects.filter(pk__in=user_ids))
    tick, lot = Decimal("0.01"), Decimal("0.00001")
    placed = 0
    while placed < count:
        user = rng.choice(users)
        size = min(BATCH, count - placed)
        requests = []
        for _ in range(size):
            side = rng.choice(("buy", "sell"))
            # Spread over 2,000 levels per side so the books have realistic depth.
            offset = rng.randint(1, 2000)
            ticks = MID_TICKS - offset if side == "buy" else MID_TICKS + offset
            requests.append(
                OrderRequest(
                    symbol=rng.choice(symbols),
                    side=side,
                    order_type="limit",
                    quantity=lot * rng.randint(1, 100),
                    price=tick * ticks,
                )
            )
        for result in order_place_batch(user=user, requests=requests):
            if isinstance(result, Exception):
                raise result
        placed += size
    connection.close()


def place_resting(markets: list[Market], users: list[User], count: int, workers: int) -> float:
    """Queue ``count`` resting orders from ``workers`` processes; returns the seconds taken."""
    connection.close()
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")
    symbols = [market.symbol for market in markets]
    share = count // workers
    jobs = [
        context.Process(
            target=_place_share,
            args=(
                symbols,
                [u.pk for u in users[n::workers]],
                share + (count % workers if n == 0 else 0),
                n,
            ),
        )
        for n in range(workers)
    ]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
        if job.exitcode:
            sys.exit(f"a placing process failed with exit code {job.exitcode}")
    return time.perf_counter() - started


def rest_all(markets: list[Market]) -> float:
    """Run the matcher's own batches in this process until no command is pending."""
    started = time.perf_counter()
    for market in markets:
        matcher = MarketMatcher(market)
        matcher.restore()
        while matcher.run_batch(settings.MATCHER_BATCH_SIZE) is not None:
            pass
    return time.perf_counter() - started


def restore_in_process(markets: list[Market]) -> dict[str, float]:
    """Seconds of ``MarketMatcher.restore`` per market (query + rebuild, no start-up)."""
    times = {}
    for market in markets:
        matcher = MarketMatcher(market)
        started = time.perf_counter()
        matcher.restore()
        times[market.symbol] = time.perf_counter() - started
    return times


def queue_crossing_pairs(markets: list[Market], taker: User) -> list[int]:
    """Per market, a buy of one lot that crosses the best ask, queued while no matcher
    runs; ``taker`` owns no resting order, so self-trade prevention cannot stop it. Returns
    the buys' ids, whose trades end the clock."""
    takers = []
    for market in markets:
        order, _ = order_place(
            user=taker,
            request=OrderRequest(
                symbol=market.symbol,
                side="buy",
                order_type="limit",
                quantity=Decimal("0.00001"),
                price=Decimal("0.01") * (MID_TICKS + 2000),
            ),
        )
        takers.append(order.pk)
    return takers


def _peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _manage(*args: str) -> list[str]:
    return [sys.executable, str(benchdb.ROOT / "manage.py"), *args]


def startup_seconds() -> float:
    """Wall time of a ``manage.py`` process that only starts Django and exits."""
    started = time.perf_counter()
    subprocess.run(
        _manage("shell", "-c", "pass"),
        check=True,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def restart_once(markets: list[Market], taker: User) -> dict:
    """Start run_matcher with crossing orders queued; seconds until every market traded."""
    takers = queue_crossing_pairs(markets, taker)
    trades_before = Trade.objects.filter(buy_order_id__in=takers).count()
    assert trades_before == 0, "a matcher is already running against the bench database"
    started = time.perf_counter()
    process = subprocess.Popen(
        _manage("run_matcher", "--markets", ",".join(m.symbol for m in markets)),
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    first_trade: dict[int, float] = {}
    try:
        deadline = started + TRADE_WAIT_SECONDS
        while len(first_trade) < len(takers):
            if time.perf_counter() > deadline or process.poll() is not None:
                raise SystemExit(f"the matcher did not trade in time:\n{process.stderr.read()}")
            for taker_id in Trade.objects.filter(buy_order_id__in=takers).values_list(
                "buy_order_id", flat=True
            ):
                first_trade.setdefault(taker_id, time.perf_counter() - started)
            time.sleep(0.005)
        rss = _peak_rss_mb(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    return {"seconds": max(first_trade.values()), "matcher_peak_rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--markets", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="processes placing orders")
    parser.add_argument("--skip-ledger-check", action="store_true")
    args = parser.parse_args()

    markets, users = setup_markets(args.markets)
    makers, taker = users[:-1], users[-1]
    place_seconds = place_resting(markets, makers, args.orders, args.workers)
    rest_seconds = rest_all(markets)
    open_orders = Order.objects.filter(status=Order.Status.OPEN).count()
    pending = OrderCommand.objects.filter(processed_at__isnull=True).count()
    print(
        f"{open_orders} open orders: placed in {place_seconds:.1f} s, rested in "
        f"{rest_seconds:.1f} s; {pending} commands pending",
        file=sys.stderr,
    )
    restore_times = restore_in_process(markets)
    startup = [startup_seconds() for _ in range(args.runs)]
    runs = [restart_once(markets, taker) for _ in range(args.runs)]
    seconds = [run["seconds"] for run in runs]
    result = {
        "open_orders": open_orders,
        "markets": args.markets,
        "runs": args.runs,
        "restart_to_first_match_s": [round(s, 3) for s in seconds],
        "restart_to_first_match_median_s": round(statistics.median(seconds), 3),
        "restore_in_process_s": round(sum(restore_times.values()), 3),
        "restore_per_market_s": {k: round(v, 3) for k, v in restore_times.items()},
        "manage_py_startup_median_s": round(statistics.median(startup), 3),
        "matcher_peak_rss_mb": max((r["matcher_peak_rss_mb"] or 0) for r in runs),
    }
    if not args.skip_ledger_check:
        result["ledger_ok"] = ledger_check().ok
    print(json.dumps(result))


if __name__ == "__main__":
    main()
