"""Faults injected into the real stack (issue 11 item 3): nothing accepted is lost.

Each test runs gunicorn, daphne and the matcher as subprocesses and breaks something under
them. Servers that get stopped are private ones (``testsupport.faults``): other test
runs share the machine's PostgreSQL and Redis, which are never touched.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal

import httpx
import psycopg
import pytest
import websockets

from testsupport.faults import PrivatePostgres, PrivateRedis
from testsupport.stack import ROOT, LiveStack, database_url, seed_markets

pytestmark = pytest.mark.faults

PASSWORD = "correct-horse-battery"
MAKER = {"email": "maker@example.com", "username": "maker", "password": PASSWORD}
TAKER = {"email": "taker@example.com", "username": "taker", "password": PASSWORD}
LOT = "0.01"
PRICE = "100.00"


def _login(stack: LiveStack, email: str) -> httpx.Client:
    client = httpx.Client(base_url=stack.web_url, timeout=15)
    response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return client


def _order(side: str, price: str = PRICE) -> dict:
    return {
        "symbol": "BTC-USD",
        "side": side,
        "order_type": "limit",
        "price": price,
        "quantity": LOT,
    }


def _post_order(client: httpx.Client, side: str, price: str = PRICE) -> httpx.Response:
    """POST an order; a rate-limit refusal (429) is waited out, it is not the fault here."""
    while True:
        response = client.post("/api/v1/orders/", json=_order(side, price))
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers.get("Retry-After", "1")))


def _assert_error_shape(response: httpx.Response, code: str) -> None:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)


class OrderStream:
    """Crossing pairs (a sell, then a buy at the same price) posted back to back from a
    thread until stopped; every response is kept, by kind."""

    def __init__(self, maker: httpx.Client, taker: httpx.Client):
        self.maker = maker
        self.taker = taker
        self.accepted: list[int] = []
        self.refused: list[httpx.Response] = []
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _post(self, client: httpx.Client, side: str) -> None:
        try:
            response = _post_order(client, side)
        except httpx.HTTPError as exc:  # a dropped connection is not an answer
            self.failed.append(repr(exc))
            return
        if response.status_code == 201:
            self.accepted.append(response.json()["id"])
        else:
            self.refused.append(response)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._post(self.maker, "sell")
            self._post(self.taker, "buy")

    def __enter__(self) -> OrderStream:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def wait_accepted(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.accepted) < count:
            assert time.monotonic() < deadline, f"only {len(self.accepted)} orders accepted"
            time.sleep(0.05)


def _check_ledger(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check_ledger"],
        cwd=ROOT,
        env={**env, "DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ledger OK" in result.stdout


def _assert_nothing_lost(query, accepted: list[int]) -> None:
    """Every accepted order is in the database, nothing else is, and every one of them
    (crossing pairs at one price) traded in full."""
    rows = query("SELECT id, status FROM trading_order")
    assert sorted(row[0] for row in rows) == sorted(accepted)
    assert {row[1] for row in rows} == {"filled"}, rows
    (pending,) = query("SELECT count(*) FROM trading_ordercommand WHERE processed_at IS NULL")[0]
    assert pending == 0
    (traded,) = query("SELECT coalesce(sum(quantity), 0) FROM trading_trade")[0]
    assert Decimal(traded) == Decimal(LOT) * (len(accepted) // 2)
    sells = query("SELECT count(*) FROM trading_order WHERE side = 'sell'")[0][0]
    (trades,) = query("SELECT count(*) FROM trading_trade")[0]
    assert trades == sells == len(accepted) // 2


def _django_query(sql: str) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def _last_trade_id() -> int:
    return _django_query("SELECT coalesce(max(id), 0) FROM trading_trade")[0][0]


def _in_thread(function, *args):
    """Call ``function`` in a worker thread whose database connection must not outlive the
    call (an open session keeps the test database from being dropped)."""
    from django.db import connection

    try:
        return function(*args)
    finally:
        connection.close()


# --- Redis restarted in the middle of a stream of orders ---------------------------------


async def _subscribe_book(ws) -> None:
    await ws.send(json.dumps({"type": "subscribe", "channel": "orderbook", "symbol": "BTC-USD"}))


async def _first_snapshot(ws, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "no order-book snapshot"
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=remaining))
        if message.get("type") == "snapshot":
            return message


async def _collect(ws, into: list[tuple[float, dict]]) -> None:
    """Every message with the moment it arrived, until the connection closes."""
    async for text in ws:
        into.append((time.monotonic(), json.loads(text)))


def test_redis_restart_loses_no_order_and_websockets_resync(transactional_db):
    seed_markets()
    with PrivateRedis(name="faults-redis") as private_redis:
        # Slow polling, so a match within a second after the restart can only be a wake-up.
        stack = LiveStack(name="faults-redis", redis_url=private_redis.url, poll_seconds=3)
        stack.create_user(**MAKER, funds={"BTC": "10"})
        stack.create_user(**TAKER, funds={"USD": "100000"})
        try:
            stack.start()
            maker, taker = _login(stack, MAKER["email"]), _login(stack, TAKER["email"])
            received: list[tuple[float, dict]] = []

            async def scenario() -> tuple[float, float, dict, OrderStream]:
                async with websockets.connect(f"{stack.ws_url}/ws/") as ws:
                    await _subscribe_book(ws)
                    await _first_snapshot(ws)
                    reader = asyncio.create_task(_collect(ws, received))
                    with OrderStream(maker, taker) as stream:
                        await asyncio.to_thread(stream.wait_accepted, 10)
                        private_redis.stop()
                        down_at = time.monotonic()
                        last_trade = await asyncio.to_thread(_in_thread, _last_trade_id)
                        # Orders keep coming and keep matching with Redis gone: the
                        # matcher polls the database.
                        await asyncio.to_thread(stream.wait_accepted, len(stream.accepted) + 10)
                        deadline = time.monotonic() + 15
                        while await asyncio.to_thread(_in_thread, _last_trade_id) <= last_trade:
                            assert time.monotonic() < deadline, "no match while Redis was down"
                            await asyncio.sleep(0.1)
                        # Subscribers are told while Redis is still down (the hub's probes
                        # fail): wait for that rather than race it with the restart.
                        deadline = time.monotonic() + 15
                        while not any(
                            at > down_at and message.get("type") == "snapshot"
                            for at, message in received
                        ):
                            assert time.monotonic() < deadline, "no resync while Redis was down"
                            await asyncio.sleep(0.1)
                        private_redis.start()
                        back_at = time.monotonic()
                        await asyncio.to_thread(stream.wait_accepted, len(stream.accepted) + 10)
                    # The hub re-subscribes and has its subscribers start over.
                    deadline = time.monotonic() + 15
                    while not any(
                        at > back_at and message.get("type") == "snapshot"
                        for at, message in received
                    ):
                        assert time.monotonic() < deadline, "no resync after Redis came back"
                        await asyncio.sleep(0.1)
                    reader.cancel()
                # A client that reconnects starts from a fresh snapshot too: once the
                # matcher has caught up (and published), the book every pair emptied.
                await asyncio.to_thread(_in_thread, stack.wait_matcher_idle, 20)
                deadline = time.monotonic() + 10
                while True:
                    async with websockets.connect(f"{stack.ws_url}/ws/") as ws:
                        await _subscribe_book(ws)
                        fresh = await _first_snapshot(ws)
                    if not (fresh["bids"] or fresh["asks"]) or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
                return down_at, back_at, fresh, stream

            down_at, back_at, fresh, stream = asyncio.run(scenario())
            stack.wait_matcher_idle(timeout=20)
            snapshots = [(at, m) for at, m in received if m.get("type") == "snapshot"]
            assert any(down_at < at < back_at for at, _ in snapshots)  # told at once, too
            assert all(m["symbol"] == "BTC-USD" for _, m in snapshots)
            assert fresh["seq"] >= snapshots[-1][1]["seq"]
            assert fresh["bids"] == []  # every pair traded away
            assert fresh["asks"] == []
            assert stream.failed == []
            assert [(r.status_code, r.text) for r in stream.refused] == []
            _assert_nothing_lost(_django_query, stream.accepted)

            # Wake-ups are back: with polling every 3 s, each of these matches at once.
            for _ in range(3):
                before = _last_trade_id()
                time.sleep(0.3)
                started = time.monotonic()
                assert _post_order(maker, "sell").status_code == 201
                assert _post_order(taker, "buy").status_code == 201
                while _last_trade_id() <= before:
                    assert time.monotonic() - started < 1.5, "matched by polling, not woken"
                    time.sleep(0.02)
        finally:
            stack.stop()
        _check_ledger({**os.environ, "DATABASE_URL": database_url()})


# --- PostgreSQL stopped for a few seconds ------------------------------------------------


def test_postgres_outage_answers_503_and_loses_nothing(transactional_db):
    with PrivatePostgres(name="faults-postgres") as pg:
        stack = LiveStack(name="faults-postgres", database_url=pg.url)
        pg.setup_exchange(
            [{**MAKER, "funds": {"BTC": "10"}}, {**TAKER, "funds": {"USD": "100000"}}],
            PASSWORD_HASHERS=stack.env()["PASSWORD_HASHERS"],
        )
        try:
            stack.start()
            maker, taker = _login(stack, MAKER["email"]), _login(stack, TAKER["email"])
            accepted: list[int] = []
            for _ in range(5):
                for client, side in ((maker, "sell"), (taker, "buy")):
                    response = _post_order(client, side)
                    assert response.status_code == 201, response.text
                    accepted.append(response.json()["id"])
            stack.wait_matcher_idle()

            pg.stop()
            down_answers = []
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                down_answers.append(_post_order(maker, "sell"))
                down_answers.append(taker.get("/api/v1/orders/"))
                down_answers.append(taker.get("/api/v1/account/balance"))
                time.sleep(0.1)
            assert down_answers
            for response in down_answers:
                assert response.status_code == 503, (response.request.url, response.text)
                _assert_error_shape(response, "SERVICE_UNAVAILABLE")
                assert response.headers["Retry-After"] == "1"
            # Pages too: the outage page, not a 500 (and no template that needs the database).
            page = httpx.get(f"{stack.web_url}/", headers={"Accept": "text/html"}, timeout=15)
            assert page.status_code == 503, page.text
            assert "briefly unavailable" in page.text
            pg.start()

            # The servers reconnect by themselves; the matcher goes on where it was.
            deadline = time.monotonic() + 20
            while True:
                response = _post_order(maker, "sell")
                if response.status_code == 201:
                    accepted.append(response.json()["id"])
                    break
                assert response.status_code == 503, response.text
                assert time.monotonic() < deadline, "the API did not come back"
                time.sleep(0.2)
            response = _post_order(taker, "buy")
            assert response.status_code == 201, response.text
            accepted.append(response.json()["id"])
            stack.wait_matcher_idle(timeout=30)
            deadline = time.monotonic() + 20
            while pg.query("SELECT count(*) FROM trading_trade")[0][0] < len(accepted) // 2:
                assert time.monotonic() < deadline, "the matcher did not resume"
                time.sleep(0.1)
            _assert_nothing_lost(pg.query, accepted)
            assert stack.matcher_beating()
        finally:
            stack.stop()
        pg.manage("check_ledger", DEBUG="1")


# --- Two matchers for one market; SIGTERM ------------------------------------------------


def _heartbeat_pid(symbol: str = "BTC-USD") -> int | None:
    from django_redis import get_redis_connection

    from trading.matcher.publish import heartbeat_key

    raw = get_redis_connection("default").get(heartbeat_key(symbol))
    return json.loads(raw)["pid"] if raw else None


def _trade_pair(maker: httpx.Client, taker: httpx.Client, timeout: float = 10) -> None:
    before = _last_trade_id()
    assert _post_order(maker, "sell").status_code == 201
    assert _post_order(taker, "buy").status_code == 201
    deadline = time.monotonic() + timeout
    while _last_trade_id() <= before:
        assert time.monotonic() < deadline, "the pair did not match"
        time.sleep(0.05)


def _advisory_lock_holders() -> set[int]:
    from trading.matcher.runner import ADVISORY_LOCK_FAMILY

    rows = _django_query(
        "SELECT DISTINCT a.client_port FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        f"WHERE l.locktype = 'advisory' AND l.classid = {ADVISORY_LOCK_FAMILY} AND l.granted "
        # Advisory locks belong to one database: other matchers on this server don't count.
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    return {row[0] for row in rows}


def test_second_matcher_waits_on_the_lock_and_takes_over(live_stack):
    live_stack.create_user(**MAKER, funds={"BTC": "10"})
    live_stack.create_user(**TAKER, funds={"USD": "100000"})
    maker, taker = _login(live_stack, MAKER["email"]), _login(live_stack, TAKER["email"])
    first = live_stack.processes["matcher"]
    live_stack.start_matcher("matcher-2", "--markets", "BTC-USD", wait=False)
    second = live_stack.processes["matcher-2"]
    log = live_stack._log_path("matcher-2")
    deadline = time.monotonic() + 30
    while "waiting for another matcher to release BTC-USD" not in log.read_text():
        assert second.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the second matcher never waited on the lock"
        time.sleep(0.1)

    _trade_pair(maker, taker)
    assert _heartbeat_pid() == first.pid
    assert len(_advisory_lock_holders()) == 1

    live_stack.stop_matcher(kill=True)  # SIGKILL: no clean-up, the session's locks just die
    assert first.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 20
    while _heartbeat_pid() != second.pid:
        assert second.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the second matcher did not take over"
        time.sleep(0.1)
    _trade_pair(maker, taker)
    assert second.poll() is None
    live_stack.wait_matcher_idle()
    orders = _django_query("SELECT status, count(*) FROM trading_order GROUP BY status")
    assert orders == [("filled", 4)]
    _check_ledger(live_stack.env())


def test_sigterm_finishes_the_batch_and_exits_cleanly(live_stack):
    live_stack.create_user(**MAKER, funds={"BTC": "10"})
    live_stack.create_user(**TAKER, funds={"USD": "100000"})
    maker, taker = _login(live_stack, MAKER["email"]), _login(live_stack, TAKER["email"])
    live_stack.stop_matcher()
    assert "stopped after" in live_stack._log_path("matcher").read_text()

    # A backlog of resting orders (no crossing), then a matcher that takes it in batches of 10.
    accepted = []
    for i in range(60):
        client, side, price = (maker, "sell", "200.00") if i % 2 else (taker, "buy", "150.00")
        response = _post_order(client, side, price)
        assert response.status_code == 201, response.text
        accepted.append(response.json()["id"])
    live_stack.start_matcher("matcher", "--batch-size", "10", wait=False)
    matcher = live_stack.processes["matcher"]
    processed = "SELECT count(*) FROM trading_ordercommand WHERE processed_at IS NOT NULL"
    deadline = time.monotonic() + 30
    while _django_query(processed)[0][0] == 0:
        assert matcher.poll() is None
        assert time.monotonic() < deadline, "the matcher never started"
        time.sleep(0.01)
    matcher.send_signal(signal.SIGTERM)
    assert matcher.wait(timeout=20) == 0
    log = live_stack._log_path("matcher").read_text()
    assert "Traceback" not in log, log
    assert "stopped after" in log
    done = _django_query(processed)[0][0]
    assert done > 0
    assert done % 10 == 0, done  # whole batches only
    # What it had not reached is still queued, and the next matcher takes it.
    live_stack.start_matcher()
    live_stack.wait_matcher_idle()
    rows = _django_query("SELECT id, status FROM trading_order")
    assert sorted(row[0] for row in rows) == sorted(accepted)
    assert {row[1] for row in rows} == {"open"}
    _check_ledger(live_stack.env())


def test_private_postgres_is_its_own_cluster():
    """The helper never points at the shared server: its port differs and it dies with
    the context."""
    with PrivatePostgres(name="faults-pg-check") as pg:
        assert pg.port != 5432
        assert pg.query("SELECT 1") == [(1,)]
        pg.stop()
        with pytest.raises(psycopg.OperationalError):
            pg.query("SELECT 1")


def test_a_lost_database_connection_maps_to_503_in_the_error_shape():
    """The mapping itself, for every DRF view: no 500 while the database is away."""
    from django.db import InterfaceError, OperationalError

    from exchange_site.exception_handler import exchange_exception_handler

    for exc in (OperationalError("server closed the connection"), InterfaceError("closed")):
        response = exchange_exception_handler(exc, {})
        assert response.status_code == 503
        assert response.data["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert response.headers["Retry-After"] == "1"
