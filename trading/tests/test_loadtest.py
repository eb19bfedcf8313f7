"""``manage.py loadtest`` against the real processes: a short run of each mode."""

import asyncio
import io
import json

import pytest

from bench import loadtest
from trading.models import Order


def options(url: str, **overrides) -> dict:
    parser = loadtest.argparse.ArgumentParser()
    loadtest.add_arguments(parser)
    values = vars(parser.parse_args(["--url", url, "--no-progress", "--seed", "5"]))
    return {**values, **overrides}


@pytest.fixture
def _shared_signing_key(monkeypatch):
    """The stack verifies JWTs with the key this process signs them with, as a load test run
    next to a real server shares its SECRET_KEY (simplejwt binds its key once per process)."""
    from rest_framework_simplejwt.state import token_backend

    monkeypatch.setenv("JWT_SIGNING_KEY", token_backend.signing_key)


@pytest.fixture
def stack(_shared_signing_key, live_stack):
    return live_stack


def run(url: str, **overrides) -> tuple[int, dict, str]:
    out = io.StringIO()
    code = loadtest.run(options(url, **overrides), out=out)
    text = out.getvalue()
    return code, json.loads(text.strip().splitlines()[-1]), text


def test_loadtest_places_cancels_drains_and_checks_the_ledger(stack):
    code, report, text = run(stack.web_url, clients=4, duration=2.0, vacuum=True)

    assert code == 0, text
    assert report["mode"] == "single"
    assert report["vacuumed"] is True
    assert report["autovacuum"] in (True, False)
    assert "PostgreSQL autovacuum" in text
    assert report["ok"]
    assert report["ledger_ok"]
    assert report["orders_accepted"] > 10
    assert 0 < report["latency_ms_p50"] <= report["latency_ms_p95"] <= report["latency_ms_p99"]
    assert not [k for k in report["errors"] if k.startswith(("5", "transport"))]
    assert "orders accepted/s" in text
    assert "check_ledger" in text
    # Every order of the run was cancelled at the end and the matcher took every command.
    assert not Order.objects.filter(
        user__email__startswith="loadtest-", status__in=Order.LIVE
    ).exists()

    code, report, text = run(
        stack.web_url, clients=2, users=4, batch=True, orders=200, duration=10.0
    )

    assert code == 0, text
    assert report["mode"] == "batch"
    assert report["orders_accepted"] >= 200
    # Two clients took turns with four users: all eight users of the two runs placed orders.
    traders = Order.objects.filter(user__email__startswith="loadtest-").values("user_id")
    assert traders.distinct().count() == 8


def test_clients_share_the_users_between_them():
    tokens = [(n, f"token-{n}") for n in range(5)]

    assert loadtest._tokens_of_client(tokens, 0, 2) == ["token-0", "token-2", "token-4"]
    assert loadtest._tokens_of_client(tokens, 1, 2) == ["token-1", "token-3"]
    assert loadtest._tokens_of_client(tokens, 6, 8) == ["token-1"]  # fewer users than clients


def test_loadtest_fails_when_a_target_is_missed(stack):
    code, report, text = run(stack.web_url, clients=2, duration=1.0, min_rate=1e9)

    assert code == 1
    assert not report["ok"]
    assert report["ledger_ok"]
    assert "FAILED: under 1000000000.0 orders/s" in text


def test_loadtest_refuses_a_server_that_rejects_its_tokens(live_stack):
    with pytest.raises(ValueError, match="refused this process's JWTs"):
        asyncio.run(loadtest.preflight(live_stack.web_url, "not-a-token"))


def test_loadtest_refuses_an_unknown_market(db):
    with pytest.raises(ValueError, match="unknown market NOPE-USD"):
        loadtest.run(options("http://127.0.0.1:9", symbol="NOPE-USD"))
