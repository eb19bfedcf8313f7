"""Benchmark WebSocket fan-out: N subscribers of one market's order book and trades.

    .venv/bin/python bench/ws_fanout.py [--clients 1000] [--ws-processes 2] [--seconds 20]
                                        [--orders-per-second 60] [--client raw|websockets]

Starts the real stack on a fresh database (``BENCH_DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/exchange_ws_bench``, dropped and recreated) and Redis
(``BENCH_REDIS_URL``, default database 13): ``--ws-processes`` daphne processes, one
matcher, and an order feeder placing orders through the services at a steady rate. Client
processes open ``--clients`` WebSockets spread over the daphnes, each subscribing to the
orderbook and trades of the market, and time every message from the moment the matcher
published it (``ts``, set right after the batch committed) to its receipt, for messages
received in the measured window (``--seconds``, once every client had time to connect).

The subscribers are ``bench/wsclient.py``'s minimal RFC 6455 client (``--client raw``, the
default since session 9) on uvloop, ``--client-processes`` processes of them. It checks
the server's handshake and frames, joins fragments, answers pings, and parses each
distinct payload once per client process with ``json.loads``; every other subscriber's
copy is compared byte for byte with it (a dict lookup), so each subscriber's trade ids,
seq ranges and ``ts`` are its own message's. The ``websockets`` library client used before
(``--client websockets``, kept for comparison) parsed every copy and cost ~3× the CPU per
message: at 2,000 subscribers the load generator took most of a core from the servers it
measured. Each latency is stamped when the read that carried the message returned.

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
- ``ws_cpu_s`` / ``matcher_cpu_s`` / ``clients_cpu_s`` / ``feeder_cpu_s``: CPU seconds the
  daphne processes (together), the matcher, the client processes (together) and the order
  feeder used during the window; steadier than latency when other work shares the box.
  ``ws_system_cpu_s``: the part of ``ws_cpu_s`` spent in the kernel (on loopback a send
  also runs the receiving side's TCP path).
- ``load_average``: the box's 1, 5 and 15-minute load averages at the end.
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
PARSED_KEPT = 4096  # distinct payloads a client process remembers having parsed
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


class Tally:
    """What the subscribers of one client process saw: the latency of every message received
    in the window, and per subscriber when its trades subscription was confirmed and the ids
    of the trades it received (whenever published: the window is applied afterwards)."""

    def __init__(self, start_at: float, stop_at: float):
        self.start_at, self.stop_at = start_at, stop_at
        self.latencies: list[float] = []
        self.stats = {"messages": 0, "gaps": 0, "resyncs": 0, "connected": 0, "retries": 0}
        self.clients: list[dict] = []
        self.parsed: dict[bytes, tuple] = {}

    def message(self, mine: dict, raw, now: float) -> None:
        """One message ``raw`` (text or UTF-8 bytes) that reached ``mine`` at ``now``."""
        self.record(mine, self.fields(raw), now)

    def message_shared(self, mine: dict, raw: bytes, now: float) -> None:
        """``message``, parsing each distinct payload once per process: every subscriber
        gets the same bytes for a public message, and a byte-for-byte comparison with a
        payload already parsed proves as much as parsing it again (~0.3 µs against ~3 µs)."""
        fields = self.parsed.get(raw)
        if fields is None:
            if len(self.parsed) >= PARSED_KEPT:
                # Oldest first: the subscribers of one message get it within a second or so.
                for stale in list(self.parsed)[: PARSED_KEPT // 2]:
                    del self.parsed[stale]
            fields = self.parsed[raw] = self.fields(raw)
        self.record(mine, fields, now)

    @staticmethod
    def fields(raw) -> tuple:
        """What the checks need from a message: type, trade id, seq range, channel, ts."""
        message = json.loads(raw)
        return (
            message.get("type"),
            message.get("id"),
            message.get("first_seq"),
            message.get("seq"),
            message.get("channel"),
            message.get("ts"),
        )

    def record(self, mine: dict, fields: tuple, now: float) -> None:
        kind, trade_id, first_seq, seq, channel, ts = fields
        if kind == "trade":
            mine["ids"].add(trade_id)
        elif kind == "update":
            last = mine["seq"]
            if last is not None and seq > last:
                if first_seq > last + 1:
                    self.stats["gaps"] += 1
                mine["seq"] = seq
        elif kind == "snapshot":
            if mine["seq"] is not None:
                self.stats["resyncs"] += 1
            mine["seq"] = seq
        elif kind == "subscribed" and channel == "trades":
            mine["subscribed"] = now
            self.clients.append(mine)
        if ts is not None and self.start_at <= now <= self.stop_at:
            self.latencies.append(now * 1000 - ts)
            self.stats["messages"] += 1


def subscribe_texts() -> list[str]:
    return [
        json.dumps({"type": "subscribe", "channel": channel, "symbol": SYMBOL})
        for channel in ("orderbook", "trades")
    ]


async def websockets_client(number: int, url: str, tally: Tally) -> None:
    """A subscriber on the ``websockets`` library (``--client websockets``): what the
    benchmark used until session 9; ~14 µs of CPU per message received."""
    import websockets

    # Connect in waves, as real clients would, rather than 1,000 handshakes at once,
    # and retry a refused handshake like any client library does.
    await asyncio.sleep(number / CONNECTS_PER_SECOND)
    for attempt in range(5):
        try:
            ws = await websockets.connect(url, max_queue=None, open_timeout=60)
            break
        except (OSError, websockets.exceptions.InvalidMessage):
            tally.stats["retries"] += 1
            await asyncio.sleep(0.5 * (attempt + 1))
    else:
        raise ConnectionError(f"could not connect to {url}")
    tally.stats["connected"] += 1
    mine = {"subscribed": None, "ids": set(), "connected": time.time(), "seq": None}
    async with ws:
        for text in subscribe_texts():
            await ws.send(text)
        # One deadline for the whole loop: a wait_for per message (a task and a timer
        # each) cost the client processes more CPU than the parsing did.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.1, tally.stop_at + DRAIN_SECONDS - time.time())):
                async for raw in ws:
                    tally.message(mine, raw, time.time())


async def raw_client(number: int, url: str, tally: Tally) -> None:
    """A subscriber on ``bench/wsclient.py`` (the default, ``--client raw``): the same
    messages, subscriptions and checks as ``websockets_client`` at a fraction of the CPU."""
    import wsclient

    await asyncio.sleep(number / CONNECTS_PER_SECOND)
    mine = {"subscribed": None, "ids": set(), "connected": None, "seq": None}

    def on_text(payload: bytes, now: float) -> None:
        tally.message_shared(mine, payload, now)

    for attempt in range(5):
        try:
            ws = await wsclient.connect(url, on_text)
            break
        except (OSError, TimeoutError) as error:  # refused, reset, or not upgraded
            tally.stats["retries"] += 1
            last = error
            await asyncio.sleep(0.5 * (attempt + 1))
    else:
        raise ConnectionError(f"could not connect to {url}: {last!r}")
    tally.stats["connected"] += 1
    mine["connected"] = time.time()
    for text in subscribe_texts():
        ws.send_text(text)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ws.closed, max(0.1, tally.stop_at + DRAIN_SECONDS - time.time()))
    ws.close()


async def run_clients(
    urls: list[str], count: int, start_at: float, stop_at: float, queue, kind: str
):
    tally = Tally(start_at, stop_at)
    client = raw_client if kind == "raw" else websockets_client
    outcomes = await asyncio.gather(
        *(client(n, urls[n % len(urls)], tally) for n in range(count)), return_exceptions=True
    )
    errors: dict[str, int] = {}
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            name = type(outcome).__name__
            if isinstance(outcome, ConnectionError) and outcome.args:
                name = f"{name}: {outcome.args[0]}"
            errors[name] = errors.get(name, 0) + 1
    queue.put(
        {
            "latencies": tally.latencies,
            "messages": tally.stats["messages"],
            "clients": [
                {
                    "subscribed": c["subscribed"],
                    "wait": c["subscribed"] - c["connected"],
                    "ids": sorted(c["ids"]),
                }
                for c in tally.clients
            ],
            "gaps": tally.stats["gaps"],
            "resyncs": tally.stats["resyncs"],
            "connected": tally.stats["connected"],
            "retries": tally.stats["retries"],
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


def client_process(urls, count, start_at, stop_at, queue, kind):
    import uvloop  # the load generator must not be the bottleneck

    uvloop.run(run_clients(urls, count, start_at, stop_at, queue, kind))


def cpu_seconds(pid: int, which: str = "both") -> float:
    """User + system (or ``which``: "user", "system") CPU time of a process so far (Linux
    ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    user, system = int(fields[11]), int(fields[12])
    ticks = {"user": user, "system": system}.get(which, user + system)
    return ticks / os.sysconf("SC_CLK_TCK")


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
    parser.add_argument("--client", choices=("raw", "websockets"), default="raw")
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
            context.Process(
                target=client_process, args=(urls, n, start_at, stop_at, queue, args.client)
            )
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
            cpu[when] = {
                "ws": sum(cpu_seconds(p.pid) for p in servers),
                "ws_system": sum(cpu_seconds(p.pid, "system") for p in servers),
                "matcher": cpu_seconds(matcher.pid),
                "clients": sum(cpu_seconds(p.pid) for p in clients),
                "feeder": cpu_seconds(feeder.pid),
            }

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
                "client": args.client,
                "client_processes": args.client_processes,
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
                **{
                    f"{name}_cpu_s": round(cpu["stop"][name] - cpu["start"][name], 1)
                    for name in ("ws", "ws_system", "matcher", "clients", "feeder")
                },
                "load_average": [round(x, 2) for x in os.getloadavg()],
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
