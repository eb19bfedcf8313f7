"""/health's matcher section: fresh heartbeat → ok with the backlog; none → down."""

import json
import time

import pytest
from django_redis import get_redis_connection

from trading.matcher.market import MarketMatcher
from trading.matcher.publish import heartbeat_key
from trading.matcher.runner import Matcher
from trading.selectors import MATCHER_STALE_SECONDS
from trading.tests.helpers import place

pytestmark = pytest.mark.django_db


def matcher_section(client) -> dict:
    response = client.get("/health")
    assert response.status_code == 200, response.content
    return response.json()["matcher"]


def test_health_reports_the_matcher_ok_after_a_pass_and_its_heartbeat(client, market, trader):
    user = trader(market, usd="1000")
    place(user, side="buy", price="100", quantity="1")
    matcher = Matcher(["BTC-USD"])
    matcher.matchers = [MarketMatcher(market)]

    assert matcher.run_once() is True
    matcher._heartbeat()

    section = matcher_section(client)
    assert section["status"] == "ok", section
    assert (section["pending_commands"], section["lag_ms"]) == (0, 0)
    assert section["last_batch_at"] is not None
    beat = json.loads(get_redis_connection("default").get(heartbeat_key("BTC-USD")))
    assert (beat["batches"], beat["commands"]) == (1, 1)

    place(user, side="buy", price="99", quantity="1")

    section = matcher_section(client)
    assert (section["status"], section["pending_commands"]) == ("ok", 1)


def test_health_reports_the_matcher_down_with_pending_commands_and_no_heartbeat(
    client, market, trader
):
    place(trader(market, usd="1000"), side="buy", price="100", quantity="1")

    section = matcher_section(client)

    assert section["status"] == "down", section
    assert section["pending_commands"] == 1
    assert section["lag_ms"] >= 0


def test_health_reports_a_stale_heartbeat(client, market):
    payload = {"pid": 1, "at": time.time() - MATCHER_STALE_SECONDS - 1, "last_batch_at": None}
    get_redis_connection("default").set(heartbeat_key("BTC-USD"), json.dumps(payload))

    assert matcher_section(client)["status"] == "stale"
