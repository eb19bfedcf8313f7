"""The soak run (bench/soak.py, issue 11 item 7) in miniature: twenty seconds of mixed load
with one SIGKILL of the matcher, and every invariant after it.

The soak starts its own stack on a database of its own (created here, dropped after), so it
runs as a subprocess, as an operator would run it; its Redis is the test run's database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings

from testsupport.stack import ROOT

pytestmark = pytest.mark.faults


@pytest.fixture
def soak_database():
    name = f"exchange_soak_smoke_p{os.getpid()}"
    url = f"postgres://postgres@127.0.0.1:5432/{name}"
    yield url
    with psycopg.connect(
        "postgres://postgres@127.0.0.1:5432/postgres", autocommit=True
    ) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_soak_with_a_matcher_kill_loses_nothing(soak_database):
    command = [
        sys.executable,
        "bench/soak.py",
        "--duration", "20",
        "--seed", "7",
        "--clients", "4",
        "--rate", "30",
        "--subscribers", "2",
        "--bad-rate", "3",
        "--fault-targets", "matcher",
        "--fault-signals", "KILL",
        "--kill-every-min", "7",
        "--kill-every-max", "7",
        "--max-faults", "1",
        "--ws-drop-every", "8",
    ]  # fmt: skip
    env = {**os.environ, "BENCH_DATABASE_URL": soak_database, "REDIS_URL": settings.REDIS_URL}
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ok"] is True
    assert report["lost_orders"] == 0
    assert report["faults"] == {"matcher SIGKILL": 1}
    assert report["orders_accepted"] > 0
    assert report["trades"] > 0
    assert report["server_errors"] == {}
    assert all(report["invariants"].values()), report["invariants"]
    # Bad input was tried, and all of it refused with a 4xx.
    assert report["bad_inputs_total"] > 0
    for kind, statuses in report["bad_inputs"].items():
        assert all(status.startswith("4") for status in statuses), (kind, statuses)
    # Both subscribers ended with the REST book of both markets.
    assert report["ws"]["books_equal_rest"] == 4
    assert report["ws"]["messages"] > 0
