"""Reads off the primary (``exchange_site.db_router``), on a real streaming replica.

The session starts its own PostgreSQL primary and hot-standby replica
(``testsupport.pgreplica``): the test database on the machine's server has no replica, and
replication lag cannot be faked honestly. For each test the ``default`` alias points at that
primary (migrated once, with the demo markets) and ``replica_0`` at its replica; both are
put back afterwards. Lag is real (replay paused with ``pg_wal_replay_pause()`` while the
primary takes writes), and so is a replica that is down (the server stopped).
"""

import contextlib
import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import auth_tokens_issue
from accounts.tests.factories import UserFactory
from exchange_site import db_router, reports
from exchange_site.db_router import (
    ReadYourWritesMiddleware,
    read_alias,
    replica_for,
    replica_lag_seconds,
    replica_reads,
    replica_states_reset,
    replica_status,
    user_pinned,
    users_pin_to_primary,
    using_replica,
)
from exchange_site.user_events import user_events_publish
from marketdata import selectors as marketdata_selectors
from marketdata.models import Candle
from testsupport.pgreplica import start_primary_and_replica
from testsupport.stack import seed_markets
from trading.models import Market, Trade
from trading.tests.helpers import drain, place
from wallets import services as wallet_services

REPLICA = "replica_0"
ROUTERS = ["exchange_site.db_router.ReplicaRouter"]
NO_CAPS = {"*": "1000000000000"}


@contextlib.contextmanager
def _default_on(host: str, port: int, name: str):
    """Point the ``default`` alias at another server for the block (every connection closed
    before and after, so none crosses over), then back at the test database."""
    settings_dict = connections[DEFAULT_DB_ALIAS].settings_dict
    saved = {key: settings_dict[key] for key in ("HOST", "PORT", "NAME")}
    connections[DEFAULT_DB_ALIAS].close()
    settings_dict.update(HOST=host, PORT=port, NAME=name)
    ContentType.objects.clear_cache()
    try:
        yield
    finally:
        connections[DEFAULT_DB_ALIAS].close()
        settings_dict.update(saved)
        ContentType.objects.clear_cache()


@pytest.fixture(scope="module")
def replica_pair(tmp_path_factory, django_db_setup, django_db_blocker):
    """The primary and its replica, the primary migrated and seeded (demo markets); for this
    module only, so the servers stop when its tests are done."""
    _, _, controls = start_primary_and_replica(tmp_path_factory.mktemp("pgreplica"))
    try:
        with (
            django_db_blocker.unblock(),
            _default_on("127.0.0.1", controls.primary.port, "exchange"),
        ):
            call_command("migrate", verbosity=0)
            seed_markets()
        controls.wait_caught_up()
        yield controls
    finally:
        controls.stop()


@pytest.fixture
def replicated(replica_pair, django_db_blocker, settings):
    """``default`` on the primary, ``replica_0`` on the replica, the router installed; the
    replicas probed at every read (no caching) unless a test says otherwise."""
    settings.DATABASE_ROUTERS = ROUTERS
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 5.0
    settings.DATABASE_READ_YOUR_WRITES_SECONDS = 10.0
    settings.DATABASE_REPLICA_CHECK_SECONDS = 0.0
    settings.DATABASE_REPLICA_RETRY_SECONDS = 0.0
    replica = {
        **connections[DEFAULT_DB_ALIAS].settings_dict,
        "HOST": "127.0.0.1",
        "PORT": replica_pair.replica.port,
        "NAME": "exchange",
    }
    replica["OPTIONS"] = {**replica["OPTIONS"], "connect_timeout": 2}
    connections.settings[REPLICA] = replica
    replica_states_reset()
    try:
        with (
            django_db_blocker.unblock(),
            _default_on("127.0.0.1", replica_pair.primary.port, "exchange"),
        ):
            try:
                yield replica_pair
            finally:
                connections[REPLICA].close()
    finally:
        replica_states_reset()
        del connections.settings[REPLICA]
        with contextlib.suppress(AttributeError):
            del connections[REPLICA]
        if not replica_pair.replica.running:
            replica_pair.start_replica()
        if replica_pair.query_replica("SELECT pg_is_wal_replay_paused()")[0][0]:
            replica_pair.resume_replay()
        replica_pair.wait_caught_up()


def _server(alias: str) -> tuple[bool, int]:
    """(in recovery, port) of the server behind ``alias``'s connection."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), inet_server_port()")
        return cursor.fetchone()


def _where_candles_are_read() -> tuple[bool, int]:
    """Where an ORM read of candles goes at this point: the server behind its alias."""
    return _server(Candle.objects.all().db)


_minutes = iter(range(1, 10_000_000))


def _candle(market: Market, close: str = "100.00") -> Candle:
    """A new 1m candle of ``market`` (each one minute earlier than the last: no clash)."""
    price = Decimal(close)
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=next(_minutes))
    return Candle.objects.create(
        market=market,
        interval=Candle.Interval.M1,
        open_time=start,
        open=price,
        high=price,
        low=price,
        close=price,
        volume=Decimal("1"),
        quote_volume=price,
        trade_count=1,
    )


def _btc_usd() -> Market:
    return Market.objects.select_related("base_asset", "quote_asset").get(symbol="BTC-USD")


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {auth_tokens_issue(user=user)['access_token']}")
    return client


def _funded_user(asset: str = "USD", amount: str = "100000"):
    user = UserFactory()
    with override_settings(
        DEMO_DEPOSITS=True, DEMO_DEPOSIT_MAX_PER_REQUEST=NO_CAPS, DEMO_DEPOSIT_MAX_PER_DAY=NO_CAPS
    ):
        wallet_services.deposit_demo_create(user=user, asset_code=asset, amount=Decimal(amount))
    return user


def _statement_orders(client: APIClient) -> list[dict]:
    response = client.get(
        "/api/v1/wallets/statements/orders",
        {"start": "2020-01-01", "end": "2030-01-01", "format": "json"},
    )
    assert response.status_code == 200, response.content
    assert isinstance(response, StreamingHttpResponse)
    return json.loads(b"".join(response.streaming_content))["rows"]


def _wait_unpinned(user_id: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while user_pinned(user_id):
        assert time.monotonic() < deadline, "the read-your-writes pin never lapsed"
        time.sleep(0.1)


# --- what goes where --------------------------------------------------------------------------


def test_staleness_tolerant_reads_hit_the_replica(replicated):
    with replica_reads() as alias:
        assert alias == REPLICA
        assert _where_candles_are_read() == (True, replicated.replica.port)
    assert using_replica(_where_candles_are_read) == (True, replicated.replica.port)


def test_reads_outside_a_replica_block_stay_on_the_primary(replicated):
    assert _where_candles_are_read() == (False, replicated.primary.port)
    with replica_reads():
        market = Market.objects.get(symbol="BTC-USD")
    assert market._state.db == REPLICA
    # The market came from the replica; its base asset, read after the block, does not.
    assert market.base_asset._state.db == DEFAULT_DB_ALIAS
    assert read_alias() == DEFAULT_DB_ALIAS


def test_writes_go_to_the_primary_even_inside_a_replica_block(replicated):
    with replica_reads():
        candle = _candle(_btc_usd())
    assert candle._state.db == DEFAULT_DB_ALIAS
    assert replicated.query_primary(
        "SELECT count(*) FROM marketdata_candle WHERE id = %s", [candle.pk]
    ) == [(1,)]


def test_reads_inside_a_transaction_stay_on_the_primary(replicated):
    with transaction.atomic():
        assert replica_for() == DEFAULT_DB_ALIAS
        assert using_replica(_where_candles_are_read) == (False, replicated.primary.port)
    assert replica_for() == REPLICA


def test_migrations_only_on_the_primary_and_relations_across_aliases(replicated):
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "trading", model_name="trade")
    assert not router.allow_migrate(REPLICA, "trading", model_name="trade")
    assert router.db_for_write(Candle) == DEFAULT_DB_ALIAS
    with replica_reads():
        market = Market.objects.get(symbol="BTC-USD")
    assert router.allow_relation(market, Candle(market_id=market.pk))


def test_market_history_selectors_serve_the_replicas_data(replicated):
    """Proof the selectors read the replica: while its replay is paused (and the lag limit
    is generous) a candle written on the primary is missing from what they return."""
    market = _btc_usd()
    seen = _candle(market, "101.00")
    replicated.wait_caught_up()
    replicated.pause_replay()
    with override_settings(DATABASE_REPLICA_MAX_LAG_SECONDS=3600):
        unseen = _candle(market, "102.00")
        opens = {
            c["open_time"]
            for c in marketdata_selectors.candle_list(market=market, interval="1m", limit=1000)
        }
        replicated.resume_replay()
        replicated.wait_caught_up()
        opens_after = {
            c["open_time"]
            for c in marketdata_selectors.candle_list(market=market, interval="1m", limit=1000)
        }
    assert marketdata_selectors.millis(seen.open_time) in opens
    assert marketdata_selectors.millis(unseen.open_time) not in opens
    assert marketdata_selectors.millis(unseen.open_time) in opens_after


def _trade_queries(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in queries if '"trading_trade"' in query["sql"]]


def test_operator_reports_read_the_replica(replicated):
    today = timezone.now().date()
    period = reports.Period(start=today, end=today)
    with (
        CaptureQueriesContext(connections[REPLICA]) as on_replica,
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary,
    ):
        reports.volume_by_day(period=period)
        reports.trades_by_hour(since=timezone.now() - timedelta(hours=24))
    assert len(_trade_queries(on_replica)) == 2
    assert _trade_queries(on_primary) == []


def test_without_replicas_nothing_is_routed(replicated):
    del connections.settings[REPLICA]
    try:
        assert db_router.replica_aliases() == []
        assert replica_for() == DEFAULT_DB_ALIAS
        assert using_replica(_where_candles_are_read) == (False, replicated.primary.port)
    finally:
        connections.settings[REPLICA] = {
            **connections[DEFAULT_DB_ALIAS].settings_dict,
            "PORT": replicated.replica.port,
        }


def test_public_history_endpoints_served_from_the_replica_return_the_primarys_data(replicated):
    """Real trades (orders matched by the matcher on the primary), read back over HTTP from
    the replica: the same trades and the candle they made."""
    market = _btc_usd()
    seller, buyer = _funded_user("BTC", "1"), _funded_user("USD", "1000")
    place(seller, side="sell", price="100.00", quantity="0.5")
    place(buyer, side="buy", price="100.00", quantity="0.5")
    drain(market)
    expected_ids = list(
        Trade.objects.filter(market=market).order_by("-id").values_list("id", flat=True)[:5]
    )
    with transaction.atomic():  # on the primary
        expected_candles = marketdata_selectors.candle_list(market=market, interval="1m", limit=1)
    replicated.wait_caught_up()
    client = APIClient()

    with (
        CaptureQueriesContext(connections[REPLICA]) as on_replica,
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary,
    ):
        trades = client.get("/api/v1/market/BTC-USD/trades", {"limit": 5})
        binance_trades = client.get("/api/v3/trades", {"symbol": "BTCUSD", "limit": 5})
        candles = client.get("/api/v1/market/BTC-USD/candles", {"interval": "1m", "limit": 1})

    assert (trades.status_code, binance_trades.status_code, candles.status_code) == (200, 200, 200)
    assert expected_ids
    assert [trade["id"] for trade in trades.json()] == expected_ids
    assert [trade["id"] for trade in binance_trades.json()] == expected_ids[::-1]
    assert trades.json()[0]["price"] == "100.00"
    assert candles.json() == expected_candles
    assert expected_candles[0]["close"] == "100.00"
    assert len(_trade_queries(on_replica)) == 2
    assert _trade_queries(on_primary) == []
    assert any('"marketdata_candle"' in query["sql"] for query in on_replica)
    assert not any('"marketdata_candle"' in query["sql"] for query in on_primary)


# --- lag ----------------------------------------------------------------------------------------


def test_a_caught_up_replica_has_no_lag_however_idle_the_primary(replicated):
    """The replay timestamp alone would call an idle, fully caught-up replica late."""
    replicated.wait_caught_up()
    time.sleep(1.1)
    (idle_for,) = replicated.query_replica(
        "SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8"
    )[0]
    assert idle_for > 1.0
    assert replica_lag_seconds(REPLICA) == 0.0


def test_a_replica_lagging_beyond_the_setting_is_skipped(replicated, settings):
    market = _btc_usd()
    replicated.pause_replay()
    _candle(market)
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 0.0
    lag = replica_lag_seconds(REPLICA)
    assert lag > 0.0
    assert replica_for() == DEFAULT_DB_ALIAS
    assert using_replica(_where_candles_are_read) == (False, replicated.primary.port)
    [status] = replica_status()
    assert (status["usable"], status["down"]) == (False, False)
    assert status["lag_seconds"] > 0.0
    # Within the limit the same replica serves.
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 3600.0
    assert replica_for() == REPLICA
    # Caught up again, it serves at any limit.
    replicated.resume_replay()
    replicated.wait_caught_up()
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 0.0
    assert replica_for() == REPLICA


def test_the_probe_is_cached_for_the_check_interval(replicated, settings):
    settings.DATABASE_REPLICA_CHECK_SECONDS = 3600.0
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 0.0
    assert replica_for() == REPLICA
    replicated.pause_replay()
    _candle(_btc_usd())
    # Within the interval the last answer stands; a new probe sees the lag.
    assert replica_for() == REPLICA
    replica_states_reset()
    assert replica_for() == DEFAULT_DB_ALIAS


# --- a replica that is down ---------------------------------------------------------------------


def test_a_stopped_replica_falls_back_to_the_primary_and_is_used_again_when_back(
    replicated, settings
):
    client = APIClient()
    market = _btc_usd()
    _candle(market, "103.00")
    expected = marketdata_selectors.candle_list(market=market, interval="1m", limit=1000)
    replicated.stop_replica()

    response = client.get("/api/v1/market/BTC-USD/candles", {"interval": "1m", "limit": 1000})

    assert response.status_code == 200
    assert response.json() == expected
    assert replica_status()[0]["down"] is True
    settings.DATABASE_REPLICA_RETRY_SECONDS = 3600.0
    replicated.start_replica()
    # Left alone for the back-off, then probed again.
    assert replica_for() == DEFAULT_DB_ALIAS
    settings.DATABASE_REPLICA_RETRY_SECONDS = 0.0
    assert replica_for() == REPLICA
    assert replica_status()[0]["down"] is False


def test_health_reports_each_replica_and_stays_healthy_when_one_is_down(replicated):
    client = APIClient()
    body = client.get("/health").json()
    assert body["status"] == "healthy"
    assert body["replicas"] == [
        {"alias": REPLICA, "usable": True, "down": False, "lag_seconds": 0.0}
    ]

    replicated.stop_replica()
    response = client.get("/health")

    # Reads fall back to the primary, so a lost replica degrades nothing users see.
    assert response.status_code == 200
    [replica] = response.json()["replicas"]
    assert (replica["alias"], replica["usable"], replica["down"]) == (REPLICA, False, True)
    replicated.start_replica()


def test_a_replica_lost_in_the_middle_of_a_read_reruns_it_on_the_primary(replicated, settings):
    """The probe said fit (and is cached); the replica goes away before the read."""
    settings.DATABASE_REPLICA_CHECK_SECONDS = 3600.0
    market = _btc_usd()
    _candle(market, "104.00")
    replicated.wait_caught_up()
    assert using_replica(_where_candles_are_read) == (True, replicated.replica.port)
    expected = marketdata_selectors.candle_list(market=market, interval="1m", limit=1000)
    replicated.stop_replica()

    served = using_replica(
        lambda: (
            _where_candles_are_read(),
            marketdata_selectors.candle_list(market=market, interval="1m", limit=1000),
        )
    )

    assert served == ((False, replicated.primary.port), expected)
    assert replica_status()[0]["down"] is True


def test_a_statement_meeting_a_lost_replica_starts_on_the_primary(replicated, settings):
    """A statement streams, so it cannot run again once begun: the replica's kept
    connection, dropped by the replica's shutdown, is checked before the first row."""
    settings.DATABASE_REPLICA_CHECK_SECONDS = 3600.0
    settings.DATABASE_READ_YOUR_WRITES_SECONDS = 0.0
    trader = _funded_user()
    placed = place(trader, side="buy", price="100.00", quantity="0.1")
    client = _client(trader)
    replicated.wait_caught_up()
    assert [row["id"] for row in _statement_orders(client)] == [placed.pk]
    assert connections[REPLICA].connection is not None  # kept open after the statement
    replicated.stop_replica()
    assert replica_for() == REPLICA  # the cached probe has not noticed

    statement = _statement_orders(client)

    assert [row["id"] for row in statement] == [placed.pk]
    assert replica_status()[0]["down"] is True


# --- read-your-writes ---------------------------------------------------------------------------


def test_a_write_request_pins_its_user_to_the_primary_until_the_window_ends(replicated, settings):
    """With replay paused (and a generous lag limit) the replica lacks the user's new order:
    their statement shows it while they are pinned, and stops showing it once the pin lapses
    and the statement is read from the replica again."""
    settings.DATABASE_READ_YOUR_WRITES_SECONDS = 1.0
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 3600.0
    user, bystander = _funded_user(), _funded_user()
    client = _client(user)
    replicated.wait_caught_up()
    _wait_unpinned(user.pk)
    _wait_unpinned(bystander.pk)
    replicated.pause_replay()

    response = client.post(
        "/api/v1/orders",
        {
            "symbol": "BTC-USD",
            "side": "buy",
            "order_type": "limit",
            "price": "100.00",
            "quantity": "0.5",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    order_id = response.json()["id"]
    assert user_pinned(user.pk)
    assert replica_for(user=user) == DEFAULT_DB_ALIAS
    assert replica_for(user=bystander) == REPLICA
    assert [row["id"] for row in _statement_orders(client)] == [order_id]
    _wait_unpinned(user.pk)
    assert replica_for(user=user) == REPLICA
    assert _statement_orders(client) == []


def test_the_middleware_pins_the_user_of_a_successful_write_only(replicated):
    user = UserFactory()
    factory = RequestFactory()

    def answering(status):
        return ReadYourWritesMiddleware(lambda request: HttpResponse(status=status))

    def request(method, who=user):
        made = getattr(factory, method)("/api/v1/anything")
        made.user = who
        return made

    answering(200)(request("get"))
    answering(409)(request("post"))
    answering(201)(request("post", AnonymousUser()))
    assert not user_pinned(user.pk)
    answering(201)(request("post"))
    assert user_pinned(user.pk)


def test_a_failed_write_request_pins_nobody(replicated):
    user = UserFactory()
    response = _client(user).post("/api/v1/orders", {"symbol": "BTC-USD"}, format="json")
    assert response.status_code == 400
    assert not user_pinned(user.pk)


def test_a_private_event_pins_its_user(replicated):
    """Fills, deposits and cancels reach their owner as private events, whichever process
    made them (the matcher's fills too): each pins the owner."""
    user, other = UserFactory(), UserFactory()
    user_events_publish([(user.pk, "balances", json.dumps({"type": "balance"}))])
    assert user_pinned(user.pk)
    assert not user_pinned(other.pk)


def test_a_pin_redis_cannot_answer_for_counts_as_set(replicated, settings):
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {**settings.CACHES["default"]["OPTIONS"], "SOCKET_CONNECT_TIMEOUT": 0.5},
        }
    }
    users_pin_to_primary([1])  # logs, does not raise
    assert user_pinned(1)
    assert replica_for(user=1) == DEFAULT_DB_ALIAS
    assert replica_for() == REPLICA
