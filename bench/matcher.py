"""Benchmark the matcher: commands queued to their trades committed and published.

    .venv/bin/python bench/matcher.py [--commands 50000] [--batch-size 2000]

Queues N place and cancel commands through the real order-entry services (the engine
benchmark's mix: ~65 % limit orders within ±100 ticks of the mid, a quarter of them
crossing; ~10 % market orders; ~25 % cancels of earlier orders); queueing is not timed. Then
the matcher process's own loop (``trading.matcher.runner.Matcher.run_once``) drains them:
the clock starts with every command queued and stops once the last batch is committed and
everything it produced is published (trades, private order and balance events, the last
book diff, ticker and candles). A subscriber on the market's trades channel counts the trade
messages that actually reached Redis, against the trades in the database. The book's restore
before the drain is timed on its own. Prints one JSON line:
``{"commands", "seconds", "cpu_seconds" (the matcher process's own CPU time),
"postgres_cpu_seconds" (its PostgreSQL backend's, when the server is on this machine; WAL
writing and fsync by other server processes are in neither), "commands_per_s",
"commands_per_cpu_s" (per second of those two CPU times together), "trades",
"trades_per_s", "trades_published", "batches", "batch_p50_ms", "batch_p99_ms",
"restore_seconds", "ledger_ok"}``. It DROPS and recreates its own database,
``BENCH_DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432/exchange_bench``).
"""

import argparse
import json
import multiprocessing
import os
import random
import statistics
import sys
import threading
import time
from decimal import Decimal

import benchdb

BENCH_DATABASE_URL = benchdb.setup(database="exchange_bench", redis_db=14)

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.models import User  # noqa: E402
from exchange_site.redis_clients import redis_client  # noqa: E402
from exchange_site.streams import public_group  # noqa: E402
from trading.exceptions import NoLiquidity  # noqa: E402
from trading.matcher.market import MarketMatcher  # noqa: E402
from trading.matcher.publish import layer_group_channel  # noqa: E402
from trading.matcher.runner import Matcher  # noqa: E402
from trading.models import Market, OrderCommand, Trade  # noqa: E402
from trading.services import OrderRequest, order_cancel, order_place  # noqa: E402
from wallets.ledger_check import ledger_check  # noqa: E402
from wallets.models import Asset  # noqa: E402
from wallets.services import deposit_demo_create  # noqa: E402

SYMBOL = "BENCH-USD"
MID_TICKS = 5_000_000  # 50,000.00 USD at a 0.01 tick
USERS = 20


def setup_market() -> tuple[Market, list[User]]:
    call_command("migrate", verbosity=0)
    usd, _ = Asset.objects.get_or_create(code="USD", defaults={"name": "US Dollar", "precision": 2})
    bench, _ = Asset.objects.get_or_create(
        code="BENCH", defaults={"name": "Bench coin", "precision": 8}
    )
    market, _ = Market.objects.update_or_create(
        symbol=SYMBOL,
        defaults={
            "base_asset": bench,
            "quote_asset": usd,
            "tick_size": Decimal("0.01"),
            "lot_size": Decimal("0.00001"),
            "min_qty": Decimal("0.00001"),
            "max_qty": Decimal("1000"),
            "min_notional": Decimal("0.01"),
            "status": Market.Status.TRADING,
        },
    )
    settings.DEMO_DEPOSITS = True
    settings.DEMO_DEPOSIT_MAX_PER_REQUEST = {"*": "1000000000"}
    settings.DEMO_DEPOSIT_MAX_PER_DAY = {"*": "1000000000000"}
    users = []
    for n in range(USERS):
        user, _ = User.objects.get_or_create(
            email=f"bench{n}@bench.example", defaults={"username": f"bench{n}"}
        )
        deposit_demo_create(user=user, asset_code="USD", amount=Decimal("100000000"))
        deposit_demo_create(user=user, asset_code="BENCH", amount=Decimal("10000"))
        users.append(user)
    return market, users


def queue_commands(market: Market, users: list[User], count: int, seed: int, workers: int) -> int:
    """Queue ``count`` commands from ``workers`` processes (each with its own users and
    connection), as concurrent clients would; returns how many commands are pending."""
    connection.close()
    context = multiprocessing.get_context("fork")
    share = count // workers
    jobs = [
        context.Process(target=_queue_share, args=(market.pk, users[n::workers], share, seed + n))
        for n in range(workers)
    ]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
        if job.exitcode:
            sys.exit(f"a queueing process failed with exit code {job.exitcode}")
    return OrderCommand.objects.filter(market=market, processed_at__isnull=True).count()


def _queue_share(market_id: int, users: list[User], count: int, seed: int) -> None:
    market = Market.objects.get(pk=market_id)
    rng = random.Random(seed)
    placed: list[tuple[User, int]] = []
    tick, lot = market.tick_size, market.lot_size
    for _ in range(count):
        roll = rng.random()
        user = rng.choice(users)
        if roll < 0.25 and placed:
            owner, order_id = placed.pop(rng.randrange(len(placed)))
            # At queueing time every order is still live, so a cancel is always queued.
            order_cancel(user=owner, order_id=order_id)
        elif roll < 0.35:
            side = rng.choice(("buy", "sell"))
            quantity = lot * rng.randint(1, 50)
            try:
                order_place(
                    user=user,
                    request=OrderRequest(
                        symbol=SYMBOL, side=side, order_type="market", quantity=quantity
                    ),
                )
            except NoLiquidity:  # a buy before any ask: nothing to price it from
                continue
        else:
            side = rng.choice(("buy", "sell"))
            offset = rng.randint(1, 100)
            crossing = rng.random() < 0.25
            if side == "buy":
                ticks = MID_TICKS + offset if crossing else MID_TICKS - offset
            else:
                ticks = MID_TICKS - offset if crossing else MID_TICKS + offset
            order, _ = order_place(
                user=user,
                request=OrderRequest(
                    symbol=SYMBOL,
                    side=side,
                    order_type="limit",
                    quantity=lot * rng.randint(1, 100),
                    price=tick * ticks,
                ),
            )
            placed.append((user, order.pk))
    connection.close()


class PublishedTrades:
    """Counts the trade messages that reach Redis on the market's trades group channel, from
    a subscriber thread: what the matcher published, counted where subscribers get it."""

    def __init__(self, symbol: str):
        self.client = redis_client(settings.REDIS_URL)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(layer_group_channel(public_group("trades", symbol)))
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self.pubsub.get_message(timeout=0.1)
            if message is not None and message["type"] == "message":
                self.received += 1

    def start(self) -> None:
        # Wait for the SUBSCRIBE's confirmation before anything is published.
        deadline = time.monotonic() + 10
        while True:
            message = self.pubsub.get_message(timeout=1)
            if message is not None and message["type"] == "subscribe":
                break
            if time.monotonic() > deadline:
                raise SystemExit("no confirmation of the trades channel's SUBSCRIBE from Redis")
        self._thread.start()

    def settle(self, expected: int, timeout: float = 5.0) -> int:
        """Wait until ``expected`` messages arrived (or ``timeout``); returns the count."""
        deadline = time.monotonic() + timeout
        while self.received < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join()
        self.pubsub.close()
        return self.received


def drain(market: Market, batch_size: int, watched: bool = False) -> dict:
    """Run the matcher process's own loop (``Matcher.run_once``: each batch committed, then
    its trades and private events published) until no command is left, then flush the last
    diff, ticker and candles; the clock covers all of it. The book's restore is timed apart.
    ``watched``: every user has a Binance user data stream open, so each order change and
    fill also becomes an ``executionReport``."""
    from exchange_site.user_events import user_streams_mark

    runner = Matcher([market.symbol], batch_size=batch_size)
    matcher = MarketMatcher(market)
    runner.matchers = [matcher]
    restore_started = time.perf_counter()
    matcher.restore()
    runner.publisher.snapshot(matcher)
    restore_seconds = time.perf_counter() - restore_started
    if watched:
        user_streams_mark(User.objects.values_list("pk", flat=True))
    trades_before = Trade.objects.filter(market=market).count()
    listener = PublishedTrades(market.symbol)
    listener.start()
    durations = []
    due = {market.symbol}
    started = time.perf_counter()
    cpu_started = time.process_time()
    postgres_started = benchdb.postgres_cpu()
    while True:
        batch_started = time.perf_counter()
        if not runner.run_once(due):
            break
        durations.append(time.perf_counter() - batch_started)
    runner.publisher.flush_due(runner.matchers, force=True)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    postgres_seconds = benchdb.postgres_cpu()
    if postgres_seconds is not None and postgres_started is not None:
        postgres_seconds = round(postgres_seconds - postgres_started, 2)
    commands = runner.commands
    trades = Trade.objects.filter(market=market).count() - trades_before
    published = listener.settle(trades)
    durations.sort()
    return {
        "commands": commands,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "postgres_cpu_seconds": postgres_seconds,
        "commands_per_s": round(commands / seconds) if seconds else 0,
        # Commands per CPU second of the matcher and its PostgreSQL backend together: on a
        # loaded machine the wall clock measures the other processes as much as this one.
        "commands_per_cpu_s": (
            round(commands / (cpu_seconds + postgres_seconds))
            if postgres_seconds is not None and cpu_seconds + postgres_seconds > 0
            else None
        ),
        "trades": trades,
        "trades_per_s": round(trades / seconds) if seconds else 0,
        "trades_published": published,
        "batches": len(durations),
        "batch_p50_ms": round(statistics.median(durations) * 1000, 1) if durations else 0,
        "batch_p99_ms": (
            round(durations[min(len(durations) - 1, int(len(durations) * 0.99))] * 1000, 1)
            if durations
            else 0
        ),
        "restore_seconds": round(restore_seconds, 3),
    }


def _drain_timing_sql(market: Market, batch_size: int) -> dict:
    """The drain with the wall time of each kind of statement summed (first 40 chars)."""
    totals: dict[str, list] = {}

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            entry = totals.setdefault(" ".join(str(sql).split())[:60], [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    with connection.execute_wrapper(timed):
        result = drain(market, batch_size)
    for sql, (count, seconds) in sorted(totals.items(), key=lambda item: -item[1][1]):
        print(f"{seconds * 1000:9.1f} ms {count:5d}x  {sql}", file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=settings.MATCHER_BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--queue-workers", type=int, default=4, help="processes queueing")
    parser.add_argument("--skip-ledger-check", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the drain (stderr)")
    parser.add_argument(
        "--sql-times", action="store_true", help="time each kind of SQL statement (stderr)"
    )
    parser.add_argument(
        "--watched",
        action="store_true",
        help="every user has a Binance user data stream open (executionReports are built)",
    )
    args = parser.parse_args()
    market, users = setup_market()
    queue_started = time.perf_counter()
    pending = queue_commands(market, users, args.commands, args.seed, args.queue_workers)
    queue_seconds = time.perf_counter() - queue_started
    print(
        f"queued {pending} commands in {queue_seconds:.1f} s "
        f"({pending / queue_seconds:.0f}/s through the services)",
        file=sys.stderr,
    )
    if args.sql_times:
        result = _drain_timing_sql(market, args.batch_size)
    elif args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        result = profiler.runcall(drain, market, args.batch_size)
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats(os.environ.get("PROFILE_SORT", "tottime"))
        stats.print_stats(int(os.environ.get("PROFILE_LINES", "25")))
    else:
        result = drain(market, args.batch_size, args.watched)
    if not args.skip_ledger_check:
        result["ledger_ok"] = ledger_check().ok
    print(json.dumps(result))


if __name__ == "__main__":
    main()
