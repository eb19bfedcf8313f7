"""Statement export over real HTTP: rows/s, bytes and the serving process's peak memory.

    .venv/bin/python bench/statement_export.py [--rows 1000000 --small 100000] [--format csv]

It DROPS and recreates its own database, ``BENCH_DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/bench_statements``), migrates it and inserts, in one
``generate_series`` statement each, ``--small`` ledger entries for one user and ``--rows``
for another (one a second, cycling over the demo assets, with a memo on every tenth), plus
``--rows // 10`` for a third user whose rows must stay out of both statements.

Then, for each of the two users, a fresh gunicorn (``gunicorn.conf.py``, one sync worker,
the production settings) serves ``GET /api/v1/wallets/statements/ledger`` over the whole
range to a client that reads the body 64 KiB at a time and counts its lines. The worker's
``VmHWM`` (peak resident set, /proc/<pid>/status) is read after a warm-up request (a
one-day statement: imports, connection, first allocations) and again after the big export:
the difference is what the export itself added. Constant memory means the difference is
about the same for ``--small`` and ``--rows`` rows. Prints one JSON line per export and a
summary line.
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import benchdb

BENCH_DATABASE_URL = benchdb.setup(database="bench_statements", redis_db=8)

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.services import auth_tokens_issue  # noqa: E402
from wallets.models import Asset, LedgerEntry  # noqa: E402
from wallets.services import assets_seed, ensure_balance_rows  # noqa: E402

JSON_ROW = b'{"id": '
ROOT = Path(__file__).resolve().parent.parent
START = "2020-01-01"
END = "2029-12-31"  # 3,652 days: within the 3,660-day limit, around all the rows below


def insert_ledger(user: User, rows: int) -> float:
    """``rows`` ledger entries of ``user`` in one INSERT ... SELECT; returns seconds.

    Straight into the table, past ``wallets.services`` (no balances change): this database
    exists only for the bench, and the statement reads nothing but the ledger rows. The
    user's balance rows are created first (at zero): every ledger line references its
    balance (wallets 0008)."""
    asset_ids = list(Asset.objects.order_by("id").values_list("id", flat=True))
    ensure_balance_rows((user.pk, asset_id) for asset_id in asset_ids)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {LedgerEntry._meta.db_table}
                (user_id, asset_id, available_delta, locked_delta, kind, reference_type,
                 reference_id, memo, created_at)
            SELECT %s, (%s::bigint[])[1 + g %% cardinality(%s::bigint[])],
                   ((g %% 100000) * 0.00012345 - 3)::numeric(36, 18),
                   (g %% 7)::numeric(36, 18),
                   'adjustment', 'adjustment', g,
                   CASE WHEN g %% 10 = 0 THEN 'bench row ' || g ELSE '' END,
                   timestamptz '2021-01-01 00:00:00+00' + g * interval '1 second'
            FROM generate_series(1, %s) AS g
            """,
            [user.pk, asset_ids, asset_ids, rows],
        )
        cursor.execute(f"ANALYZE {LedgerEntry._meta.db_table}")
    return time.perf_counter() - started


def prepare(args) -> dict[str, User]:
    call_command("migrate", verbosity=0)
    assets_seed()
    users = {}
    for label in ("small", "large", "other"):
        users[label] = User.objects.create_user(
            email=f"statement-{label}@bench.example", username=f"statement-{label}", password=None
        )
    timings = {
        "small": insert_ledger(users["small"], args.small),
        "large": insert_ledger(users["large"], args.rows),
        "other": insert_ledger(users["other"], max(args.rows // 10, 1)),
    }
    print(json.dumps({"inserted_seconds": {k: round(v, 1) for k, v in timings.items()}}))
    return users


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def worker_pid(master: int) -> int:
    for _ in range(200):
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise RuntimeError("gunicorn started no worker")


def start_gunicorn(port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "1",
        "DATABASE_URL": BENCH_DATABASE_URL,
        "THROTTLING": "off",
        "DEBUG": "0",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "exchange_site.wsgi"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/health")
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("gunicorn did not start")


def fetch(port: int, token: str, query: str) -> dict:
    """One statement, read 64 KiB at a time: seconds to the first byte and in all, bytes,
    lines."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.request(
        "GET",
        f"/api/v1/wallets/statements/ledger?{query}",
        headers={"Authorization": f"Bearer {token}", "Host": "localhost"},
    )
    response = conn.getresponse()
    assert response.status == 200, (response.status, response.read()[:500])
    first_byte = None
    size = lines = objects = 0
    tail = b""
    while chunk := response.read1(65536):
        if first_byte is None:
            first_byte = time.perf_counter() - started
        size += len(chunk)
        lines += chunk.count(b"\n")
        # JSON rows: each starts '{"id": '; the tail carries a match split between reads.
        objects += (tail + chunk).count(JSON_ROW)
        tail = chunk[-(len(JSON_ROW) - 1) :]
    conn.close()
    return {
        "seconds": time.perf_counter() - started,
        "ttfb": first_byte,
        "bytes": size,
        "lines": lines,
        "objects": objects,
    }


def measure(port: int, user: User, fmt: str) -> dict:
    token = auth_tokens_issue(user=user)["access_token"]
    server = start_gunicorn(port)
    try:
        worker = worker_pid(server.pid)
        fetch(port, token, f"start=2021-01-01&end=2021-01-02&format={fmt}")  # warm-up
        rss_before = status_kib(worker, "VmRSS")
        hwm_before = status_kib(worker, "VmHWM")
        result = fetch(port, token, f"start={START}&end={END}&format={fmt}")
        hwm_after = status_kib(worker, "VmHWM")
        rss_after = status_kib(worker, "VmRSS")
    finally:
        server.terminate()
        server.wait(timeout=30)
    rows = result["lines"] - 1 if fmt == "csv" else result["objects"]
    return {
        "format": fmt,
        "rows": rows,
        "bytes": result["bytes"],
        "seconds": round(result["seconds"], 2),
        "ttfb_ms": round(result["ttfb"] * 1000, 1),
        "rows_per_s": round(rows / result["seconds"]) if rows else None,
        "mb_per_s": round(result["bytes"] / result["seconds"] / 1e6, 1),
        "worker_rss_kib_before": rss_before,
        "worker_hwm_kib_before": hwm_before,
        "worker_hwm_kib_after": hwm_after,
        "worker_rss_kib_after": rss_after,
        "peak_growth_kib": hwm_after - hwm_before,
    }


def yardstick() -> dict:
    """How busy and how fast the shared machine is right now (see docs/PERFORMANCE.md)."""
    started = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i
    return {
        "loadavg": os.getloadavg(),
        "python_loop_5M_s": round(time.perf_counter() - started, 3),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--format", choices=["csv", "json"], default="csv")
    parser.add_argument("--port", type=int, default=8791)
    args = parser.parse_args(argv)
    print(json.dumps({"yardstick_before": yardstick()}))
    users = prepare(args)
    results = {}
    for label in ("small", "large"):
        result = measure(args.port, users[label], args.format)
        results[label] = result
        print(json.dumps({"user": label, **result}))
    # Every row of the user came back, and none of the third user's.
    assert results["small"]["rows"] == args.small, results["small"]
    assert results["large"]["rows"] == args.rows, results["large"]
    print(
        json.dumps(
            {
                "summary": {
                    "rows": [args.small, args.rows],
                    "peak_growth_kib": [results[k]["peak_growth_kib"] for k in ("small", "large")],
                    "rows_per_s": [results[k]["rows_per_s"] for k in ("small", "large")],
                },
                "yardstick_after": yardstick(),
            }
        )
    )


if __name__ == "__main__":
    main()
