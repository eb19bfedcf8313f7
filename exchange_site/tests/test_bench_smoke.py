"""Every benchmark of ``make bench`` still runs and still counts right (issue 21 item 2).

``bench/run.py --mode smoke`` runs each benchmark for a few seconds on a database of its own
(created here, dropped after) and checks its counts: the ledger is clean, every trade the
matcher committed was published, the yardstick wrote one order per accepted request, no
WebSocket subscriber lost a trade. No timing is asserted: the numbers are for ``make bench``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings

from testsupport.stack import ROOT, database_url


@pytest.fixture
def bench_database(db):
    server = database_url().rsplit("/", 1)[0]
    name = f"exchange_bench_smoke_p{os.getpid()}"
    yield f"{server}/{name}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        for database in (name, f"{name}_yardstick"):
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_every_benchmark_runs_and_counts_right(bench_database):
    env = {
        **os.environ,
        "BENCH_DATABASE_URL": bench_database,
        "REDIS_URL": settings.REDIS_URL,
        "BENCH_REDIS_URL": settings.REDIS_URL,
    }
    env.pop("DATABASE_URL", None)
    # Set in this process by exchange_site.asgi (imported by the consumer tests); the
    # benchmarks' own processes must not inherit it.
    env.pop("DATABASE_POOL", None)
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--mode", "smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {
        "engine": "ok",
        "matcher": "ok",
        "matcher_restart": "ok",
        "http_order_entry": "ok",
        "ws_fanout_1000": "ok",
    }, output[-6000:]
