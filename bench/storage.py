"""What an order costs PostgreSQL and Redis: bytes per row, WAL bytes, Redis commands and bytes.

    .venv/bin/python bench/storage.py [--commands 40000]

The capacity model of docs/SCALING.md multiplies these figures. To count only this run's
work it starts its own PostgreSQL cluster (the machine's binaries, durable: fsync and full
page writes on, as a primary runs) and its own Redis server under ``var/bench-storage/``, so
the WAL position and Redis's command statistics move for nothing else on a shared box. Then
bench/matcher.py's workload runs in two timed phases:

1. **order entry**: N place and cancel commands through the real services (the single-
   statement placement, the cancel statement, the after-commit wake-ups), from 4 processes;
2. **matching**: the matcher's own loop drains them (trades, orders, candles, balances and
   their ledger lines in one transaction per batch; then trades, private events, book diffs,
   tickers and candles published).

For each phase: WAL bytes (``pg_current_wal_lsn`` before and after), Redis calls per command
name (``INFO commandstats``) and bytes in and out (``INFO stats``). At the end: rows added and
``pg_total_relation_size`` added (heap, indexes and TOAST) for the order, trade, command,
ledger and candle tables, both as written and after ``VACUUM FULL`` (packed), so bytes per
row = size / rows. Prints one JSON line. The servers are stopped and their directory removed
at exit.
"""

import argparse
import atexit
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devservers.postgres import PostgresServer, system_bin_dir  # noqa: E402
from devservers.redis import RedisServer  # noqa: E402

WORK_DIR = ROOT / "var" / "bench-storage"


def start_servers() -> tuple[PostgresServer, RedisServer]:
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    postgres = PostgresServer(
        WORK_DIR / "pg" / "data",
        binaries=system_bin_dir(),
        log_path=WORK_DIR / "pg" / "postgres.log",
        # No archiving or replicas here; the default wal_level (replica) is what a primary
        # with streaming replicas writes.
        settings={"max_connections": "50"},
    ).start()
    redis_server = RedisServer(WORK_DIR / "redis").start()

    def stop():
        redis_server.stop()
        postgres.stop()
        shutil.rmtree(WORK_DIR, ignore_errors=True)

    atexit.register(stop)
    return postgres, redis_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="matcher batch size (default MATCHER_BATCH_SIZE, a backlog's full batches; "
        "a small one stands for live trading's batches of a few orders)",
    )
    args = parser.parse_args()

    postgres, redis_server = start_servers()
    os.environ["BENCH_DATABASE_URL"] = postgres.url("exchange_storage")
    os.environ["REDIS_URL"] = redis_server.url(0)
    sys.path.insert(0, str(ROOT / "bench"))
    # bench/matcher.py points Django at BENCH_DATABASE_URL and REDIS_URL when imported.
    import matcher as workload
    import redis
    from django.db import connection

    from marketdata.models import Candle
    from trading.models import Order, OrderCommand, Trade
    from wallets.ledger_check import ledger_check
    from wallets.models import LedgerEntry

    models = {
        "orders": Order,
        "trades": Trade,
        "order_commands": OrderCommand,
        "ledger_entries": LedgerEntry,
        "candles": Candle,
    }
    client = redis.Redis.from_url(os.environ["REDIS_URL"])

    def query(sql: str, params=()):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    def wal_lsn() -> str:
        return query("SELECT pg_current_wal_lsn()::text")

    def sizes() -> dict[str, dict[str, int]]:
        return {
            name: {
                "rows": model.objects.count(),
                "bytes": query("SELECT pg_total_relation_size(%s)", [model._meta.db_table]),
            }
            for name, model in models.items()
        }

    def redis_counters() -> dict:
        info = client.info("stats")
        calls = {
            name.removeprefix("cmdstat_"): stats["calls"]
            for name, stats in client.info("commandstats").items()
        }
        return {
            "net_input_bytes": info["total_net_input_bytes"],
            "net_output_bytes": info["total_net_output_bytes"],
            "calls": calls,
        }

    def phase(run) -> dict:
        client.config_resetstat()
        start_lsn = wal_lsn()
        started = time.perf_counter()
        value = run()
        seconds = time.perf_counter() - started
        wal_bytes = query("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)::bigint", [start_lsn])
        counters = redis_counters()
        # Our own INFO/CONFIG calls are not the workload's.
        for name in ("info", "config|resetstat", "config"):
            counters["calls"].pop(name, None)
        return {"seconds": round(seconds, 2), "wal_bytes": int(wal_bytes), **counters}, value

    market, users = workload.setup_market()
    connection.cursor().execute("VACUUM ANALYZE")
    before = sizes()

    entry, pending = phase(
        lambda: workload.queue_commands(market, users, args.commands, args.seed, workers=4)
    )
    orders_placed = Order.objects.count() - before["orders"]["rows"]
    commands_queued = OrderCommand.objects.count() - before["order_commands"]["rows"]
    matching, drained = phase(
        lambda: workload.drain(market, args.batch_size or workload.settings.MATCHER_BATCH_SIZE)
    )
    written = sizes()
    connection.cursor().execute("VACUUM FULL")
    packed = sizes()

    tables = {}
    for name in models:
        rows = written[name]["rows"] - before[name]["rows"]
        tables[name] = {
            "rows": rows,
            "bytes_written": written[name]["bytes"] - before[name]["bytes"],
            "bytes_per_row_written": (
                round((written[name]["bytes"] - before[name]["bytes"]) / rows) if rows else None
            ),
            "bytes_per_row_packed": round(packed[name]["bytes"] / packed[name]["rows"])
            if packed[name]["rows"]
            else None,
        }
    trades = drained["trades"]
    result = {
        "commands": commands_queued,
        "orders_placed": orders_placed,
        "cancels_queued": commands_queued - orders_placed,
        "pending_after_entry": pending,
        "trades": trades,
        "batch_size": args.batch_size or workload.settings.MATCHER_BATCH_SIZE,
        "batches": drained["batches"],
        "order_entry": {
            **entry,
            "wal_bytes_per_command": round(entry["wal_bytes"] / commands_queued),
            "redis_calls_per_command": round(sum(entry["calls"].values()) / commands_queued, 2),
        },
        "matching": {
            **matching,
            "wal_bytes_per_command": round(matching["wal_bytes"] / drained["commands"]),
            "wal_bytes_per_trade": round(matching["wal_bytes"] / trades) if trades else None,
            "redis_calls_per_command": round(
                sum(matching["calls"].values()) / drained["commands"], 3
            ),
            "redis_input_bytes_per_trade": round(matching["net_input_bytes"] / trades)
            if trades
            else None,
        },
        "tables": tables,
        "ledger_ok": ledger_check().ok,
        "postgres": query("SHOW server_version"),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
