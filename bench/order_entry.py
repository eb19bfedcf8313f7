"""Profile order entry in-process: SQL statements and milliseconds per accepted order.

    .venv/bin/python bench/order_entry.py [--orders 2000] [--profile service|view] [--sql]
                                          [--layers]

Two paths, both without a network: ``service`` calls ``trading.services.order_place``
directly; ``view`` sends ``POST /api/v1/orders/`` through Django's test client, so the whole
WSGI stack runs (middleware, JWT authentication, throttling, the serializers, rendering).
Orders are GTC limit orders a few ticks off the mid on both sides, spread over several users,
so nothing crosses and the matcher is not involved. Prints one JSON line:
``{"orders", "service_ms_per_order", "service_statements_per_order", "view_ms_per_order",
"view_statements_per_request"}``. With ``--sql`` the statements of one order of each path go
to stderr; ``--profile`` prints a cProfile of one path to stderr. ``--layers`` adds this
process's CPU milliseconds per order through the view (``view_cpu_ms``), without the order
fast path (``drf_view_cpu_ms``), with no middleware, and what each middleware adds. It DROPS
and recreates its own database, ``BENCH_DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/exchange_bench_entry``).
"""

import argparse
import json
import random
import sys
import time
from decimal import Decimal

import benchdb

BENCH_DATABASE_URL = benchdb.setup(
    database="exchange_bench_entry", redis_db=13, allowed_hosts="localhost,testserver"
)

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.services import auth_tokens_issue  # noqa: E402
from trading.models import Market  # noqa: E402
from trading.services import OrderRequest, markets_seed, order_place  # noqa: E402
from wallets.services import assets_seed, deposit_demo_create  # noqa: E402

SYMBOL = "BTC-USD"
MID = Decimal("50000")
USERS = 8


def setup() -> tuple[Market, list[User]]:
    call_command("migrate", verbosity=0)
    assets_seed()
    markets_seed()
    settings.DEMO_DEPOSITS = True
    settings.DEMO_DEPOSIT_MAX_PER_REQUEST = {"*": "1000000000"}
    settings.DEMO_DEPOSIT_MAX_PER_DAY = {"*": "1000000000000"}
    # The bench measures order entry, not the limiter's refusals (THROTTLING=off).
    settings.THROTTLING = False
    users = []
    for n in range(USERS):
        user = User.objects.create_user(
            email=f"entry{n}@bench.example", username=f"entry{n}", password=None
        )
        deposit_demo_create(user=user, asset_code="USD", amount=Decimal("100000000"))
        deposit_demo_create(user=user, asset_code="BTC", amount=Decimal("10000"))
        users.append(user)
    return Market.objects.get(symbol=SYMBOL), users


def order_fields(rng: random.Random, n: int) -> dict:
    side = "buy" if n % 2 else "sell"
    offset = Decimal(rng.randint(1, 500)) / 100
    price = MID - offset if side == "buy" else MID + offset
    return {"side": side, "price": price, "quantity": Decimal(rng.randint(3, 100)) / 100_000}


def run_service(users: list[User], count: int, rng: random.Random) -> float:
    started = time.perf_counter()
    for n in range(count):
        order_place(
            user=users[n % len(users)],
            request=OrderRequest(symbol=SYMBOL, order_type="limit", **order_fields(rng, n)),
        )
    return time.perf_counter() - started


def run_view(clients: list[Client], count: int, rng: random.Random) -> float:
    started = time.perf_counter()
    for n in range(count):
        fields = order_fields(rng, n)
        body = {"symbol": SYMBOL, "order_type": "limit", **{k: str(v) for k, v in fields.items()}}
        response = clients[n % len(clients)].post(
            "/api/v1/orders/", body, content_type="application/json"
        )
        if response.status_code != 201:
            sys.exit(f"POST /api/v1/orders/ answered {response.status_code}: {response.content}")
    return time.perf_counter() - started


def view_cpu_ms(users: list[User], count: int, rng: random.Random) -> float:
    """This process's CPU milliseconds per order through the view (the database's excluded),
    with fresh clients: a test client builds its middleware chain on its first request."""
    clients = []
    for user in users:
        token = auth_tokens_issue(user=user)["access_token"]
        clients.append(Client(HTTP_AUTHORIZATION=f"Bearer {token}"))
    run_view(clients, 20, rng)  # warm up, and build the chains
    started = time.process_time()
    run_view(clients, count, rng)
    return round((time.process_time() - started) / count * 1000, 3)


def layers(users: list[User], count: int, rng: random.Random) -> dict:
    """CPU ms per order of the whole view path, of the DRF path without the fast path, and
    what each middleware adds (the path's CPU with it minus without it)."""
    from django.test import override_settings

    result = {"view_cpu_ms": view_cpu_ms(users, count, rng)}
    with override_settings(ORDER_ENTRY_FAST_PATH=False):
        result["drf_view_cpu_ms"] = view_cpu_ms(users, count, rng)
    middleware = {}
    # Middleware the others need goes with them (authentication needs sessions, ...).
    needs = {
        "SessionMiddleware": ("AuthenticationMiddleware", "MessageMiddleware"),
        "AuthenticationMiddleware": ("AuthSessionMiddleware",),
    }
    for name in settings.MIDDLEWARE:
        gone = {name.rpartition(".")[2]}
        for needed, dependents in needs.items():
            if needed in gone:
                gone.update(dependents)
        if "AuthenticationMiddleware" in gone:
            gone.add("AuthSessionMiddleware")
        without = [m for m in settings.MIDDLEWARE if m.rpartition(".")[2] not in gone]
        with override_settings(MIDDLEWARE=without):
            middleware["+".join(sorted(gone))] = round(
                result["view_cpu_ms"] - view_cpu_ms(users, count, rng), 3
            )
    with override_settings(MIDDLEWARE=[]):
        result["no_middleware_cpu_ms"] = view_cpu_ms(users, count, rng)
    result["middleware_cpu_ms"] = middleware
    return result


def statements(run, *args) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        run(*args)
    return [query["sql"] for query in captured.captured_queries]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000, help="orders timed per path")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", choices=("service", "view"), help="cProfile one path")
    parser.add_argument("--sql", action="store_true", help="print one order's statements")
    parser.add_argument(
        "--layers",
        action="store_true",
        help="also the view's CPU per order with and without the fast path and each middleware",
    )
    args = parser.parse_args()
    _market, users = setup()
    clients = []
    for user in users:
        token = auth_tokens_issue(user=user)["access_token"]
        clients.append(Client(HTTP_AUTHORIZATION=f"Bearer {token}"))
    rng = random.Random(args.seed)
    # Warm up both paths: prepared statements, caches, imports.
    run_service(users, 50, rng)
    run_view(clients, 50, rng)

    service_sql = statements(run_service, users[:1], 1, rng)
    view_sql = statements(run_view, clients[:1], 1, rng)
    if args.sql:
        for name, sql in (("service", service_sql), ("view", view_sql)):
            print(f"--- {name}: {len(sql)} statements", file=sys.stderr)
            for line in sql:
                print("   ", line[:200], file=sys.stderr)

    if args.profile:
        import cProfile
        import pstats

        run = run_service if args.profile == "service" else run_view
        target = users if args.profile == "service" else clients
        profiler = cProfile.Profile()
        profiler.runcall(run, target, args.orders, rng)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)

    service_seconds = run_service(users, args.orders, rng)
    view_seconds = run_view(clients, args.orders, rng)
    report = {
        "orders": args.orders,
        "service_ms_per_order": round(service_seconds / args.orders * 1000, 3),
        "service_statements_per_order": len(service_sql),
        "view_ms_per_order": round(view_seconds / args.orders * 1000, 3),
        "view_statements_per_request": len(view_sql),
    }
    if args.layers:
        report.update(layers(users, args.orders, rng))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
