"""Benchmark WebSocket fan-out: N subscribers of one market's order book and trades.

    .venv/bin/python bench/ws_fanout.py [--clients 1000] [--ws-processes 2] [--seconds 20]
                                        [--orders-per-second 60]

Starts the real stack on a fresh database (``BENCH_DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/exchange_ws_bench``, dropped and recreated) and Redis
(``BENCH_REDIS_URL``, default database 13): ``--ws-processes`` daphne processes, one
matcher, and an order feeder placing orders through the services at a steady rate. Client
processes open ``--clients`` WebSockets spread over the daphnes, each subscribing to the
orderbook and trades of the market, and time every message from the moment the matcher
published it (``ts``, set right after the batch committed) to its receipt, for messages
received in the measured window (``--seconds``, once every client had time to connect).
Prints one JSON line:

- ``latency_p50_ms`` / ``latency_p99_ms``: over every message every client received in the
  window; ``messages_per_s``: those messages per second, all clients together.
- ``trades_in_db``: trades of the bench market the matcher committed in the window (read
  from the database after the run: the truth, not what some client happened to see).
- ``trades_lost``: summed over the clients that connected, the trades in the database
  committed while that client was subscribed (from the server's ``subscribed`` reply to
  its trades subscription, or the window's start if later, to the window's end) that it
  never received; clients keep reading ``DRAIN_SECONDS`` after the window so that a late
  trade is not counted as lost. ``trades_lost_max``: the most one client lost;
  ``clients_missing_trades``: how many clients lost any. A client whose connection broke
  counts every trade it missed after that.
- ``clients_failed``: clients that never got connected and subscribed (after retries),
  by error in ``client_errors``; they count in no loss figure.
- ``subscribe_p50_ms`` / ``subscribe_max_ms``: from a client's connection to the server's
  ``subscribed`` reply to its trades subscription.
- ``ws_cpu_s`` / ``matcher_cpu_s``: CPU seconds the daphne processes (together) and the
  matcher used during the window; steadier than latency when other work shares the box.
- ``diff_gaps``: order-book diffs whose ``first_seq`` skipped past the previous ``seq``
  (a resync then follows); ``resyncs``: snapshots received after the first.
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

from benchdb import recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SYMBOL = "BENCH-USD"
CONNECTS_PER_SECOND = 150  # per client process
DRAIN_SECONDS = 5.0  # clients keep reading after the window, for late trades
BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/exchange_ws_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "exchange_site.settings",
    "DATABASE_URL": BENCH_DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "SECRET_KEY": "ws-bench-only",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DEBUG": "0",
    "LOG_LEVEL": "WARNING",
}


def django_setup() -> None:
    os.environ.update(ENV)
    import django

    django.setup()


def prepare() -> None:
    """Migrate, create the market, fund the traders, seed a book around 100.00."""
    django_setup()
    from django.core.management import call_command
    from django.test import override_settings
    from django_redis import get_redis_connection

    from accounts.models import User
    from trading.models import Market
    from wallets.models import Asset
    from wallets.services import deposit_demo_create

    call_command("migrate", verbosity=0)
    get_redis_connection("default").flushdb()
    usd = Asset.objects.create(code="USD", name="US Dollar", precision=2)
    bench = Asset.objects.create(code="BENCH", name="Bench coin", precision=8)
    Market.objects.create(
        symbol=SYMBOL,
        base_asset=bench,
        quote_asset=usd,
        tick_size=Decimal("0.01"),
        lot_size=Decimal("0.001"),
        min_qty=Decimal("0.001"),
        max_qty=Decimal("1000"),
        min_notional=Decimal("0.01"),
    )
    caps = {"*": "1000000000"}
    with override_settings(
        DEMO_DEPOSITS=True, DEMO_DEPOSIT_MAX_PER_REQUEST=caps, DEMO_DEPOSIT_MAX_PER_DAY=caps
    ):
        for n in range(10):
            user = User.objects.create_user(
                email=f"feeder{n}@bench.example", username=f"feeder{n}", password=None
            )
            deposit_demo_create(user=user, asset_code="USD", amount=Decimal("100000000"))
            deposit_demo_create(user=user, asset_code="BENCH", amount=Decimal("1000000"))


def feed_orders(rate: float, seconds: float, stop_at: float) -> None:
    """Place limit orders around 100.00 at ``rate`` per second until ``stop_at``."""
    django_setup()
    from accounts.models import User
    from trading.services import OrderRequest, order_place

    users = list(User.objects.filter(email__endswith="@bench.example"))
    rng = random.Random(5)
    interval = 1.0 / rate
    next_at = time.monotonic()
    while time.time() < stop_at:
        side = rng.choice(("buy", "sell"))
        crossing = rng.random() < 0.3
        offset = rng.randint(1, 200)
        ticks = 10_000 + (offset if (side == "buy") == crossing else -offset)
        order_place(
            user=rng.choice(users),
            request=OrderRequest(
                symbol=SYMBOL,
                side=side,
                order_type="limit",
                quantity=Decimal("0.001") * rng.randint(1, 50),
                price=Decimal("0.01") * ticks,
            ),
        )
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


async def run_clients(urls: list[str], count: int, start_at: float, stop_at: float, queue):
    import websockets

    latencies: list[float] = []
    stats = {"messages": 0, "gaps": 0, "resyncs": 0, "connected": 0, "retries": 0}
    # Per client that subscribed: when its trades subscription was confirmed, and the ids
    # of the trades it received (whenever published: the window is applied afterwards).
    clients: list[dict] = []

    async def client(number: int, url: str) -> None:
        # Connect in waves, as real clients would, rather than 1,000 handshakes at once,
        # and retry a refused handshake like any client library does.
        await asyncio.sleep(number / CONNECTS_PER_SECOND)
        for attempt in range(5):
            try:
                ws = await websockets.connect(url, max_queue=None, open_timeout=60)
                break
            except (OSError, websockets.exceptions.InvalidMessage):
                stats["retries"] += 1
                await asyncio.sleep(0.5 * (attempt + 1))
        else:
            raise ConnectionError(f"could not connect to {url}")
        mine = {"subscribed": None, "ids": set(), "connected": time.time()}
        async with ws:
            stats["connected"] += 1
            for channel in ("orderbook", "trades"):
                await ws.send(
                    json.dumps({"type": "subscribe", "channel": channel, "symbol": SYMBOL})
                )
            seq = None
            # One deadline for the whole loop: a wait_for per message (a task and a timer
            # each) cost the client processes more CPU than the parsing did.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.1, stop_at + DRAIN_SECONDS - time.time())):
                    async for raw in ws:
                        now = time.time()
                        message = json.loads(raw)
                        kind = message.get("type")
                        if kind == "trade":
                            mine["ids"].add(message["id"])
                        elif kind == "update":
                            if seq is not None and message["seq"] > seq:
                                if message["first_seq"] > seq + 1:
                                    stats["gaps"] += 1
                                seq = message["seq"]
                        elif kind == "snapshot":
                            if seq is not None:
                                stats["resyncs"] += 1
                            seq = message["seq"]
                        elif kind == "subscribed" and message.get("channel") == "trades":
                            mine["subscribed"] = now
                            clients.append(mine)
                        if "ts" in message and start_at <= now <= stop_at:
                            latencies.append(now * 1000 - message["ts"])
                            stats["messages"] += 1

    outcomes = await asyncio.gather(
        *(client(n, urls[n % len(urls)]) for n in range(count)), return_exceptions=True
    )
    errors: dict[str, int] = {}
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            errors[type(outcome).__name__] = errors.get(type(outcome).__name__, 0) + 1
    queue.put(
        {
            "latencies": latencies,
            "messages": stats["messages"],
            "clients": [
                {
                    "subscribed": c["subscribed"],
                    "wait": c["subscribed"] - c["connected"],
                    "ids": sorted(c["ids"]),
                }
                for c in clients
            ],
            "gaps": stats["gaps"],
            "resyncs": stats["resyncs"],
            "connected": stats["connected"],
            "retries": stats["retries"],
            "errors": errors,
        }
    )


def trades_committed(start_at: float, stop_at: float) -> list[tuple[int, float]]:
    """``(id, committed at)`` of the bench market's trades created in the window."""
    import psycopg

    with psycopg.connect(BENCH_DATABASE_URL) as conn:
        rows = conn.execute(
            "SELECT t.id, extract(epoch FROM t.created_at)::float8 FROM trading_trade t"
            " JOIN trading_market m ON m.id = t.market_id"
            " WHERE m.symbol = %s AND t.created_at >= to_timestamp(%s)"
            " AND t.created_at <= to_timestamp(%s) ORDER BY t.id",
            (SYMBOL, start_at, stop_at),
        ).fetchall()
    return [(trade_id, at) for trade_id, at in rows]


def client_process(urls, count, start_at, stop_at, queue):
    import uvloop  # the load generator must not be the bottleneck

    uvloop.run(run_clients(urls, count, start_at, stop_at, queue))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listening on {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--ws-processes", type=int, default=2)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--orders-per-second", type=float, default=60)
    parser.add_argument("--base-port", type=int, default=8301)
    args = parser.parse_args()

    recreate_database(BENCH_DATABASE_URL)
    context = multiprocessing.get_context("spawn")
    setup = context.Process(target=prepare)
    setup.start()
    setup.join()
    python = sys.executable
    servers = []
    ports = [args.base_port + n for n in range(args.ws_processes)]
    for port in ports:
        servers.append(
            subprocess.Popen(
                [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0",
                 "exchange_site.asgi:application"],
                cwd=ROOT, env=ENV,
            )
        )  # fmt: skip
    matcher = subprocess.Popen(
        [python, "manage.py", "run_matcher", "--markets", SYMBOL], cwd=ROOT, env=ENV
    )
    try:
        for port in ports:
            wait_port(port)
        urls = [f"ws://127.0.0.1:{port}/ws/" for port in ports]
        # Connecting thousands of sockets takes a while; measure only once all are in.
        warmup = 5 + args.clients / args.client_processes / CONNECTS_PER_SECOND * 1.5
        start_at = time.time() + warmup
        stop_at = start_at + args.seconds
        queue = context.Queue()
        per_process = [args.clients // args.client_processes] * args.client_processes
        per_process[0] += args.clients - sum(per_process)
        clients = [
            context.Process(target=client_process, args=(urls, n, start_at, stop_at, queue))
            for n in per_process
        ]
        for process in clients:
            process.start()
        feeder = context.Process(
            target=feed_orders, args=(args.orders_per_second, args.seconds, stop_at)
        )
        feeder.start()
        # The servers' CPU over the window: less at the mercy of other load on the box than
        # latency is, so a fairer comparison between two versions run one after the other.
        cpu: dict[str, list[float]] = {}

        def sample(when: str) -> None:
            cpu[when] = [cpu_seconds(p.pid) for p in servers] + [cpu_seconds(matcher.pid)]

        timers = [
            threading.Timer(max(0.0, at - time.time()), sample, (when,))
            for when, at in (("start", start_at), ("stop", stop_at))
        ]
        for timer in timers:
            timer.start()
        results = [queue.get(timeout=warmup + args.seconds + DRAIN_SECONDS + 120) for _ in clients]
        feeder.join()
        for process in clients:
            process.join()
    finally:
        matcher.send_signal(signal.SIGTERM)
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for process in (matcher, *servers):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()

    latencies = sorted(x for r in results for x in r["latencies"])
    in_db = trades_committed(start_at, stop_at)
    subscribed = [c for r in results for c in r["clients"]]
    losses = []
    for c in subscribed:
        since = max(start_at, c["subscribed"])
        received = set(c["ids"])
        losses.append(sum(1 for trade_id, at in in_db if at >= since and trade_id not in received))
    failed = args.clients - len(subscribed)
    waits = sorted(c["wait"] * 1000 for c in subscribed)
    print(
        json.dumps(
            {
                "clients": args.clients,
                "connected": sum(r["connected"] for r in results),
                "clients_failed": failed,
                "ws_processes": args.ws_processes,
                "seconds": args.seconds,
                "orders_per_second": args.orders_per_second,
                "trades_in_db": len(in_db),
                "messages_delivered": len(latencies),
                "messages_per_s": round(len(latencies) / args.seconds),
                "latency_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
                "latency_p99_ms": (
                    round(latencies[int(len(latencies) * 0.99) - 1], 1) if latencies else None
                ),
                "latency_max_ms": round(latencies[-1], 1) if latencies else None,
                "subscribe_p50_ms": round(statistics.median(waits), 1) if waits else None,
                "subscribe_max_ms": round(waits[-1], 1) if waits else None,
                "ws_cpu_s": round(sum(cpu["stop"][:-1]) - sum(cpu["start"][:-1]), 1),
                "matcher_cpu_s": round(cpu["stop"][-1] - cpu["start"][-1], 1),
                "trades_lost": sum(losses),
                "trades_lost_max": max(losses, default=0),
                "clients_missing_trades": sum(1 for n in losses if n),
                "diff_gaps": sum(r["gaps"] for r in results),
                "resyncs": sum(r["resyncs"] for r in results),
                "connect_retries": sum(r["retries"] for r in results),
                "client_errors": {
                    name: sum(r["errors"].get(name, 0) for r in results)
                    for name in {name for r in results for name in r["errors"]}
                },
            }
        )
    )


if __name__ == "__main__":
    main()
