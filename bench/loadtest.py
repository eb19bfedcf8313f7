"""Load-test order entry over HTTP: how many orders/s the running exchange accepts.

    python manage.py loadtest [--url http://127.0.0.1:8000] [--clients 32] [--duration 30]
                              [--orders M] [--batch [--batch-size 20]] [--mix limit=70,...]
    python bench/loadtest.py ...            (the same, without manage.py)

Creates ``--users`` funded users directly in the database (through the services: a
registration-free account, demo deposits, a JWT issued like at login), then ``--clients``
asyncio clients drive ``POST /api/v1/orders/`` (or ``/orders/batch`` with
``--batch``) and ``DELETE /api/v1/orders/{id}`` at ``--url`` for ``--duration`` seconds or
until ``--orders`` orders were accepted. The mix is limit orders around the market's price
(a fifth of them crossing), market orders and cancels of the client's own earlier orders.

At the end: a table and one JSON line with orders accepted/s, HTTP latency p50/p95/p99,
trades/s, the matcher's lag, and errors by status and code. Then it cancels what its users
still have open (``--keep-orders`` not to), waits for the matcher to drain every pending
command, runs ``check_ledger``, and exits 1 if anything is off: a 5xx or transport error,
a matcher that did not drain, a broken ledger invariant, nothing accepted, or a missed
``--min-rate`` / ``--max-p99-ms``. The server is whatever runs at ``--url`` on the same
database and with the same ``SECRET_KEY`` (or ``JWT_SIGNING_KEY``) as this process: ``make
run``, gunicorn + ``run_matcher``, or ``docker compose``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import secrets
import statistics
import sys
import time
import urllib.parse
from collections import Counter, deque
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

DEFAULT_MIX = "limit=70,market=10,cancel=20"
USER_FUNDS_QUOTE = Decimal("10000000")  # in the quote asset; the base gets as much in value

# A request not answered in this time counts as a transport error.
REQUEST_TIMEOUT_SECONDS = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="The web server.")
    parser.add_argument("--clients", type=int, default=32, help="Concurrent HTTP clients.")
    parser.add_argument("--users", type=int, default=None, help="Users (default: --clients).")
    parser.add_argument("--duration", type=float, default=30.0, help="Seconds to run.")
    parser.add_argument(
        "--orders", type=int, default=None, help="Stop once this many orders were accepted."
    )
    parser.add_argument("--symbol", default="BTC-USD", help="The market to trade.")
    parser.add_argument("--mix", default=DEFAULT_MIX, help="Weights of limit, market, cancel.")
    parser.add_argument("--batch", action="store_true", help="Place through /orders/batch.")
    parser.add_argument("--batch-size", type=int, default=20, help="Orders per batch (1-20).")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--drain-timeout", type=float, default=120.0, help="Seconds to wait for the matcher."
    )
    parser.add_argument(
        "--keep-orders", action="store_true", help="Leave the users' open orders in the book."
    )
    parser.add_argument("--min-rate", type=float, default=None, help="Fail under this orders/s.")
    parser.add_argument("--max-p99-ms", type=float, default=None, help="Fail over this p99.")
    parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="VACUUM ANALYZE the order-entry tables first (for servers without autovacuum).",
    )


@dataclass
class Plan:
    """What the clients send: the market's grid and a price to trade around."""

    symbol: str
    tick: Decimal
    lot: Decimal
    unit_lots: int  # the smallest order worth sending, in lots
    reference_ticks: int
    mix: list[tuple[str, int]]
    batch: bool
    batch_size: int


@dataclass
class Stats:
    accepted: int = 0
    requests: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)


def parse_mix(text: str) -> list[tuple[str, int]]:
    mix = []
    for part in text.split(","):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in ("limit", "market", "cancel") or not weight.strip().isdigit():
            raise ValueError(f"bad --mix part {part!r}: use limit=N,market=N,cancel=N")
        mix.append((name, int(weight)))
    if not sum(weight for _, weight in mix if _ != "cancel"):
        raise ValueError("--mix needs some limit or market orders")
    return mix


# --- preparation in the database (synchronous, Django) -----------------------------------


def prepare(options: dict) -> tuple[Plan, list[tuple[int, str]], list]:
    """Create and fund the users; returns the plan, (user id, access token) pairs and users."""
    from django.test import override_settings

    from accounts.models import User
    from accounts.services import auth_tokens_issue
    from trading.exceptions import MarketNotFound
    from trading.marketmaker import START_PRICES
    from trading.models import Market
    from trading.selectors import market_get_by_symbol
    from wallets.services import deposit_demo_create

    try:
        market = market_get_by_symbol(symbol=options["symbol"])
    except MarketNotFound as exc:
        raise ValueError(f"unknown market {options['symbol']}") from exc
    if market.status != Market.Status.TRADING:
        raise ValueError(f"{market.symbol} is {market.status}, not trading")
    reference = market.last_price or Decimal(START_PRICES.get(market.symbol, "100"))
    unit = max(market.min_qty, market.min_notional * 10 / reference)
    unit_lots = int((unit / market.lot_size).to_integral_value(rounding=ROUND_CEILING))
    base_funds = (USER_FUNDS_QUOTE / reference).quantize(market.base_asset.quantum)
    run_id = secrets.token_hex(3)
    users, tokens = [], []
    caps = {"*": "1000000000000"}
    # Benchmark accounts get benchmark-sized demo deposits, whatever the server's faucet allows.
    with override_settings(
        DEMO_DEPOSITS=True, DEMO_DEPOSIT_MAX_PER_REQUEST=caps, DEMO_DEPOSIT_MAX_PER_DAY=caps
    ):
        for n in range(options["users"] or options["clients"]):
            user = User.objects.create_user(
                email=f"loadtest-{run_id}-{n}@loadtest.example",
                username=f"loadtest-{run_id}-{n}",
                password=None,
                full_name="Load test",
            )
            deposit_demo_create(
                user=user, asset_code=market.quote_asset.code, amount=USER_FUNDS_QUOTE
            )
            deposit_demo_create(user=user, asset_code=market.base_asset.code, amount=base_funds)
            users.append(user)
            tokens.append((user.pk, auth_tokens_issue(user=user)["access_token"]))
    plan = Plan(
        symbol=market.symbol,
        tick=market.tick_size,
        lot=market.lot_size,
        unit_lots=unit_lots,
        reference_ticks=int(reference / market.tick_size),
        mix=parse_mix(options["mix"]),
        batch=options["batch"],
        batch_size=max(1, min(20, options["batch_size"])),
    )
    return plan, tokens, users


# --- the load (asyncio) -----------------------------------------------------------------


def order_body(plan: Plan, kind: str, rng: random.Random) -> dict:
    side = rng.choice(("buy", "sell"))
    quantity = plan.lot * plan.unit_lots * rng.randint(1, 20)
    if kind == "market":
        return {
            "symbol": plan.symbol,
            "side": side,
            "order_type": "market",
            "quantity": str(quantity),
        }
    offset = rng.randint(1, 50)
    if rng.random() < 0.2:
        offset = -rng.randint(0, 5)  # crosses the other side's best levels
    ticks = plan.reference_ticks - offset if side == "buy" else plan.reference_ticks + offset
    return {
        "symbol": plan.symbol,
        "side": side,
        "order_type": "limit",
        "price": str(plan.tick * max(ticks, 1)),
        "quantity": str(quantity),
    }


class HttpError(Exception):
    """The connection failed or the answer was not HTTP/1.1 as expected."""


class HttpClient:
    """A minimal HTTP/1.1 client for one load-test client: it reuses its connection while
    the server keeps it open (gunicorn's sync workers close it after every answer), parses
    only the status line and ``Content-Length``, and takes prebuilt header bytes. The load
    generator shares the two cores with the server it measures: aiohttp cost ~1.2 ms of CPU
    per request here, this about a fifth of that."""

    def __init__(self, url: str, token: str):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"--url must be http://host[:port], not {url!r}")
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.prefix = parsed.path.rstrip("/")
        self.headers = (
            f"Host: {parsed.netloc}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: application/json\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode() + self.headers
        if body is not None:
            head += b"Content-Type: application/json\r\n"
        head += b"Content-Length: %d\r\n\r\n" % len(payload)
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.write(head + payload)
            return await self._answer()
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self.close()
            raise HttpError(type(exc).__name__) from exc

    async def _answer(self) -> tuple[int, bytes]:
        status_line = await self.reader.readline()
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP answer: {status_line[:60]!r}")
        length, keep = None, parts[0] == b"HTTP/1.1"
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                keep = value.strip().lower() == b"keep-alive" or (
                    keep and value.strip().lower() != b"close"
                )
        if length is None:
            body, keep = await self.reader.read(), False
        else:
            body = await self.reader.readexactly(length)
        if not keep:
            self.close()
        return int(parts[1]), body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def client(
    url: str, tokens: list[str], plan: Plan, stats: Stats, stop: asyncio.Event, seed: int
) -> None:
    """One closed-loop client: a request, its answer, the next. With several users' tokens
    it takes them in turn (each user's own orders are the ones it cancels), so that more
    users than clients share the load and no one user meets its order rate limit."""
    rng = random.Random(seed)
    sessions = [(HttpClient(url, token), deque(maxlen=1000)) for token in tokens]
    names = [name for name, _ in plan.mix]
    weights = [weight for _, weight in plan.mix]
    turn = 0
    try:
        while not stop.is_set():
            http, mine = sessions[turn % len(sessions)]
            turn += 1
            kind = rng.choices(names, weights)[0]
            if kind == "cancel" and not mine:
                kind = "limit"
            started = time.perf_counter()
            try:
                if kind == "cancel":
                    order_id = mine.popleft() if rng.random() < 0.5 else mine.pop()
                    answer = http.request("DELETE", f"/api/v1/orders/{order_id}")
                elif plan.batch:
                    bodies = [
                        order_body(
                            plan, "market" if rng.random() < _market_share(plan) else "limit", rng
                        )
                        for _ in range(plan.batch_size)
                    ]
                    answer = http.request("POST", "/api/v1/orders/batch", {"orders": bodies})
                else:
                    answer = http.request("POST", "/api/v1/orders/", order_body(plan, kind, rng))
                status, payload = await asyncio.wait_for(answer, REQUEST_TIMEOUT_SECONDS)
            except (TimeoutError, HttpError) as exc:
                http.close()
                name = type(exc).__name__ if isinstance(exc, TimeoutError) else str(exc)
                stats.errors[f"transport {name}"] += 1
                stats.requests += 1
                continue
            stats.latencies.append(time.perf_counter() - started)
            stats.requests += 1
            _count(stats, kind, plan, status, payload, mine)
    finally:
        for http, _ in sessions:
            http.close()


def _market_share(plan: Plan) -> float:
    weights = dict(plan.mix)
    placed = weights.get("limit", 0) + weights.get("market", 0)
    return weights.get("market", 0) / placed if placed else 0.0


def _count(stats: Stats, kind: str, plan: Plan, status: int, payload: bytes, mine: deque) -> None:
    try:
        body = json.loads(payload) if payload else {}
    except ValueError:
        body = {}
    if status >= 300:
        code = body.get("error", {}).get("code", "") if isinstance(body, dict) else ""
        stats.errors[f"{status} {code}".strip()] += 1
        return
    if kind == "cancel":
        return
    results = body["results"] if plan.batch else [{"status": status, "order": body}]
    for result in results:
        if result["status"] == 201:
            stats.accepted += 1
            order = result["order"]
            if order["order_type"] == "limit":
                mine.append(order["id"])
        elif result["status"] != 200:
            stats.errors[f"{result['status']} {result['error']['code']} (in batch)"] += 1


async def preflight(url: str, token: str) -> None:
    """Fail early and clearly when the server is not there or does not take our tokens."""
    http = HttpClient(url, token)
    try:
        status, _ = await asyncio.wait_for(
            http.request("GET", "/api/v1/users/profile"), REQUEST_TIMEOUT_SECONDS
        )
    except (TimeoutError, HttpError) as exc:
        raise ValueError(f"no web server answers at {url}: {exc}") from exc
    finally:
        http.close()
    if status == 401:
        raise ValueError(
            f"{url} refused this process's JWTs: run the load test with the server's "
            "SECRET_KEY (or JWT_SIGNING_KEY) and DATABASE_URL"
        )
    if status != 200:
        raise ValueError(f"{url}/api/v1/users/profile answered {status}")


def _tokens_of_client(tokens: list[tuple[int, str]], n: int, clients: int) -> list[str]:
    """Client ``n``'s users: every ``clients``-th from the ``n``-th, or one shared user when
    there are fewer users than clients."""
    if len(tokens) <= clients:
        return [tokens[n % len(tokens)][1]]
    return [token for _, token in tokens[n::clients]]


async def drive(options: dict, plan: Plan, tokens: list[tuple[int, str]]) -> tuple[Stats, float]:
    stats = Stats()
    stop = asyncio.Event()
    seed = options["seed"] if options["seed"] is not None else random.randrange(1 << 30)
    url = options["url"].rstrip("/")
    progress = None
    if not options["no_progress"]:
        from tqdm import tqdm

        total = options["orders"]
        progress = tqdm(total=total, unit="order", file=sys.stderr, dynamic_ncols=True)
    await preflight(url, tokens[0][1])
    started = time.perf_counter()
    clients = options["clients"]
    tasks = [
        asyncio.create_task(
            client(url, _tokens_of_client(tokens, n, clients), plan, stats, stop, seed + n)
        )
        for n in range(clients)
    ]
    shown = 0
    while True:
        await asyncio.sleep(0.25)
        elapsed = time.perf_counter() - started
        if progress is not None:
            progress.update(stats.accepted - shown)
            shown = stats.accepted
            progress.set_postfix(
                rate=f"{stats.accepted / elapsed:,.0f}/s", errors=sum(stats.errors.values())
            )
        if elapsed >= options["duration"] or (
            options["orders"] and stats.accepted >= options["orders"]
        ):
            break
    stop.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    if progress is not None:
        progress.update(stats.accepted - shown)
        progress.close()
    return stats, elapsed


def _run_loop(coroutine):
    """uvloop where installed (requirements-dev): the load generator shares the CPU with the
    server it measures, so the cheaper its event loop the more the server gets."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


# --- after the load -------------------------------------------------------------------------


def matcher_backlog() -> tuple[int, int]:
    """(pending commands, age of the oldest in ms)."""
    from django.utils import timezone

    from trading.models import OrderCommand

    pending = OrderCommand.objects.filter(processed_at__isnull=True)
    oldest = pending.order_by("id").values_list("created_at", flat=True).first()
    lag = int((timezone.now() - oldest).total_seconds() * 1000) if oldest else 0
    return pending.count(), lag


def wait_for_drain(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        pending, _ = matcher_backlog()
        if not pending:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def ledger_ok() -> tuple[bool, str]:
    from django.core.management import CommandError, call_command

    out = io.StringIO()
    try:
        call_command("check_ledger", stdout=out)
    except CommandError as exc:
        return False, f"{out.getvalue()}{exc}"
    return True, out.getvalue()


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(share * 1000) - 1]


def autovacuum_on() -> bool:
    """PostgreSQL's ``autovacuum`` setting."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        return cursor.fetchone()[0] == "on"


def vacuum_order_tables() -> None:
    """VACUUM ANALYZE the tables order entry and the matcher churn. Without autovacuum
    their dead rows pile up run after run, and every run is slower than the one before
    (here 511 accepted orders/s on a fresh database, 447 four runs later, 504-516 again
    after a VACUUM)."""
    from django.db import connection

    from accounts.models import User
    from trading.models import Order, OrderCommand, Trade
    from wallets.models import Balance, LedgerEntry

    with connection.cursor() as cursor:
        for model in (Order, OrderCommand, Balance, LedgerEntry, Trade, User):
            cursor.execute(f'VACUUM (ANALYZE) "{model._meta.db_table}"')


def run(options: dict, out=sys.stdout) -> int:
    """The whole load test; returns the exit code."""
    from django.db import close_old_connections
    from django.utils import timezone

    from trading.models import Trade
    from trading.services import order_cancel_all

    autovacuum = autovacuum_on()
    if options["vacuum"]:
        vacuum_order_tables()
    elif not autovacuum:
        print(
            "warning: PostgreSQL's autovacuum is off: dead rows pile up and each run is "
            "slower than the last; use --vacuum (or VACUUM ANALYZE) between runs",
            file=sys.stderr,
        )
    plan, tokens, users = prepare(options)
    window_start = timezone.now()
    stats, elapsed = _run_loop(drive(options, plan, tokens))
    close_old_connections()
    pending, lag_ms = matcher_backlog()
    trades = Trade.objects.filter(market__symbol=plan.symbol, created_at__gte=window_start).count()
    latencies = sorted(stats.latencies)
    report = {
        "mode": "batch" if plan.batch else "single",
        "clients": options["clients"],
        "users": len(tokens),
        "seconds": round(elapsed, 2),
        "requests": stats.requests,
        "orders_accepted": stats.accepted,
        "orders_accepted_per_s": round(stats.accepted / elapsed, 1),
        "latency_ms_p50": round(percentile(latencies, 0.50) * 1000, 1),
        "latency_ms_p95": round(percentile(latencies, 0.95) * 1000, 1),
        "latency_ms_p99": round(percentile(latencies, 0.99) * 1000, 1),
        "trades": trades,
        "trades_per_s": round(trades / elapsed, 1),
        "matcher_lag_ms": lag_ms,
        "matcher_pending": pending,
        "errors": dict(sorted(stats.errors.items())),
        "autovacuum": autovacuum,
        "vacuumed": options["vacuum"] and autovacuum is not None,
    }
    if not options["keep_orders"]:
        for user in users:
            order_cancel_all(user=user)
    report["drained"] = wait_for_drain(options["drain_timeout"])
    report["ledger_ok"], ledger_text = ledger_ok() if report["drained"] else (False, "")
    failures = _failures(report, options)
    report["ok"] = not failures
    print(_table(report), file=out)
    for failure in failures:
        print(f"FAILED: {failure}", file=out)
    if not report["ledger_ok"] and ledger_text:
        print(ledger_text, file=out)
    print(json.dumps(report), file=out)
    return 0 if report["ok"] else 1


def _failures(report: dict, options: dict) -> list[str]:
    failures = []
    broken = {k: v for k, v in report["errors"].items() if k.startswith(("5", "transport"))}
    if broken:
        failures.append(f"server or transport errors: {broken}")
    if not report["orders_accepted"]:
        failures.append("no order was accepted")
    if not report["drained"]:
        failures.append(f"the matcher did not drain within {options['drain_timeout']} s")
    elif not report["ledger_ok"]:
        failures.append("check_ledger found violations")
    if options["min_rate"] and report["orders_accepted_per_s"] < options["min_rate"]:
        failures.append(f"under {options['min_rate']} orders/s")
    if options["max_p99_ms"] and report["latency_ms_p99"] > options["max_p99_ms"]:
        failures.append(f"p99 over {options['max_p99_ms']} ms")
    return failures


def _table(report: dict) -> str:
    rows = [
        ("mode", f"{report['mode']}, {report['clients']} clients, {report['users']} users"),
        ("duration", f"{report['seconds']} s, {report['requests']:,} requests"),
        ("orders accepted", f"{report['orders_accepted']:,}"),
        ("orders accepted/s", f"{report['orders_accepted_per_s']:,.1f}"),
        (
            "HTTP latency p50/p95/p99",
            f"{report['latency_ms_p50']} / {report['latency_ms_p95']} / "
            f"{report['latency_ms_p99']} ms",
        ),
        ("trades/s", f"{report['trades_per_s']:,.1f} ({report['trades']:,} trades)"),
        (
            "matcher lag at the end",
            f"{report['matcher_lag_ms']} ms ({report['matcher_pending']:,} commands pending)",
        ),
    ]
    errors = report["errors"] or {"none": 0}
    rows += [(f"errors {name}", f"{count:,}") for name, count in errors.items()]
    rows += [
        (
            "PostgreSQL autovacuum",
            {True: "on", False: "off", None: "n/a (not PostgreSQL)"}[report["autovacuum"]]
            + (", tables vacuumed before the run" if report["vacuumed"] else ""),
        ),
        ("matcher drained", "yes" if report["drained"] else "NO"),
        ("check_ledger", "ok" if report["ledger_ok"] else "FAILED"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    return run(options)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
    import django

    django.setup()
    sys.exit(main())
