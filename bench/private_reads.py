"""What a private read costs the web process: CPU per request of the reads a trading page
and an API client repeat, next to placing an order through the same path.

    .venv/bin/python bench/private_reads.py [--requests 2000] [--open-orders 50]

In process, through Django's test client (the whole middleware stack, JWT authentication,
throttles, serializers; no HTTP server or socket, which gunicorn adds on top), on a fresh
database (``BENCH_DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/
exchange_reads_bench``, dropped and recreated) and Redis database 12. One user with
``--open-orders`` resting orders (placed through the services; no matcher runs, so they stay
``new``) and a funded wallet. The order placements are counted the same way, so the two
figures can be compared on any machine. Rate limits are raised for the user (the reads would
otherwise be throttled at 20/s): the throttle's Redis script still runs on every request.
Prints one JSON line: per path, CPU ms of this process and of its PostgreSQL backend per
request (the latter when the server runs on this machine).
"""

import argparse
import json
import os
import time
from decimal import Decimal

os.environ.setdefault("THROTTLE_PRIVATE_READ", "1000000/s")
os.environ.setdefault("THROTTLE_ORDERS", "1000000/s")

import benchdb

benchdb.setup(database="exchange_reads_bench", redis_db=12)

from django.core.management import call_command  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.services import auth_tokens_issue  # noqa: E402
from trading.models import Market  # noqa: E402
from trading.services import OrderRequest, order_place  # noqa: E402
from wallets.models import Asset  # noqa: E402
from wallets.services import deposit_demo_create  # noqa: E402

READS = [
    "/api/v1/orders?status=open",
    "/api/v1/account/balance",
    "/api/v1/wallets",
    "/api/v1/trades?symbol=BTC-USD",
]


def setup(open_orders: int) -> User:
    call_command("migrate", verbosity=0)
    usd, _ = Asset.objects.get_or_create(code="USD", defaults={"name": "US Dollar", "precision": 2})
    btc, _ = Asset.objects.get_or_create(code="BTC", defaults={"name": "Bitcoin", "precision": 8})
    Market.objects.update_or_create(
        symbol="BTC-USD",
        defaults={
            "base_asset": btc,
            "quote_asset": usd,
            "tick_size": Decimal("0.01"),
            "lot_size": Decimal("0.00001"),
            "min_qty": Decimal("0.00001"),
            "max_qty": Decimal("1000"),
            "min_notional": Decimal("1"),
            "status": Market.Status.TRADING,
        },
    )
    user = User.objects.create_user(email="reads@bench.example", username="reads", password=None)
    caps = {"*": "1000000000000"}
    with override_settings(
        DEMO_DEPOSITS=True, DEMO_DEPOSIT_MAX_PER_REQUEST=caps, DEMO_DEPOSIT_MAX_PER_DAY=caps
    ):
        deposit_demo_create(user=user, asset_code="USD", amount=Decimal("100000000"))
        deposit_demo_create(user=user, asset_code="BTC", amount=Decimal("1000"))
    for n in range(open_orders):
        order_place(
            user=user,
            request=OrderRequest(
                symbol="BTC-USD",
                side="buy",
                order_type="limit",
                quantity=Decimal("0.001"),
                price=Decimal("40000") - n,
            ),
        )
    return user


def timed(requests: int, call) -> dict:
    for _ in range(min(100, requests)):  # warm: prepared statements, caches
        call()
    cpu, backend, started = time.process_time(), benchdb.postgres_cpu(), time.perf_counter()
    for _ in range(requests):
        call()
    cpu = time.process_time() - cpu
    backend_after = benchdb.postgres_cpu()
    return {
        "cpu_ms": round(cpu / requests * 1000, 3),
        "postgres_cpu_ms": (
            round((backend_after - backend) / requests * 1000, 3)
            if backend is not None and backend_after is not None
            else None
        ),
        "requests_per_s_one_thread": round(requests / (time.perf_counter() - started)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--open-orders", type=int, default=50)
    args = parser.parse_args()
    user = setup(args.open_orders)
    token = auth_tokens_issue(user=user)["access_token"]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="localhost")
    result = {"requests": args.requests, "open_orders": args.open_orders, "paths": {}}
    for path in READS:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.content[:300])
        result["paths"][f"GET {path}"] = timed(args.requests, lambda path=path: client.get(path))
    order = {"symbol": "BTC-USD", "side": "sell", "order_type": "limit", "quantity": "0.001"}
    body = json.dumps({**order, "price": "90000"})

    def place():
        response = client.post("/api/v1/orders", body, content_type="application/json")
        assert response.status_code == 201, (response.status_code, response.content[:300])

    result["paths"]["POST /api/v1/orders"] = timed(args.requests, place)
    result["load_average"] = [round(value, 2) for value in os.getloadavg()]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
