"""``manage.py matcher_health [--markets BTC-USD,...] [--max-age 30]``: a matcher's liveness
probe (deploy/k8s, docs/SCALING.md).

A matcher has no HTTP port, so its container is probed by running this. It fails (exit 1)
only on evidence that the matcher on THIS host is wedged: one of its markets' heartbeat says
this host leads the market and is older than ``--max-age`` seconds. Everything else passes:

- a fresh heartbeat from this host: this pod leads and its loop turns;
- a heartbeat from another host: this pod is the shard's standby, waiting on the advisory
  lock (ARCHITECTURE §3.5). Restarting a standby cannot help a wedged leader; the leader's
  own probe restarts it and frees the lock;
- no heartbeat at all: nobody has run the market yet (start-up, the book being restored);
- Redis or PostgreSQL not answering: the matcher keeps matching without Redis (§3.6) and
  waits for PostgreSQL by itself; restarting every matcher during an outage would only add
  book rebuilds to it.
"""

import json
import socket
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django_redis import get_redis_connection

from exchange_site.streams import heartbeat_key
from trading.models import Market
from trading.selectors import normalize_symbol


def wedged_markets(beats: dict[str, dict | None], *, host: str, now: float, max_age: float):
    """``(symbol, age)`` of each market whose heartbeat names ``host`` and is older than
    ``max_age`` seconds. Pure: the command feeds it what Redis holds."""
    return [
        (symbol, now - beat["at"])
        for symbol, beat in beats.items()
        if beat and beat.get("host") == host and now - beat["at"] > max_age
    ]


class Command(BaseCommand):
    help = "Exit 1 when this host's matcher holds a market but its heartbeat went stale."

    def add_arguments(self, parser):
        parser.add_argument(
            "--markets", default="", help="Comma-separated symbols as run_matcher's (all if empty)"
        )
        parser.add_argument(
            "--max-age",
            type=float,
            default=30.0,
            help="Seconds after which this host's own heartbeat counts as stale (default 30).",
        )

    def handle(self, *args, markets, max_age, **options):
        symbols = [normalize_symbol(s) for s in markets.split(",") if s.strip()]
        try:
            symbols = symbols or list(Market.objects.values_list("symbol", flat=True))
        except DatabaseError as exc:
            self.stdout.write(f"unknown: PostgreSQL unavailable ({type(exc).__name__})")
            return
        try:
            raw = get_redis_connection("default").mget([heartbeat_key(s) for s in symbols])
        except Exception as exc:  # any Redis failure: no evidence either way
            self.stdout.write(f"unknown: Redis unavailable ({type(exc).__name__})")
            return
        beats = {
            symbol: json.loads(beat) if beat else None
            for symbol, beat in zip(symbols, raw, strict=True)
        }
        host = socket.gethostname()
        wedged = wedged_markets(beats, host=host, now=time.time(), max_age=max_age)
        if wedged:
            described = ", ".join(f"{symbol} ({age:.1f} s)" for symbol, age in wedged)
            raise CommandError(f"stale heartbeat from this host ({host}): {described}")
        leaders = {beat.get("host") for beat in beats.values() if beat}
        if host in leaders:
            self.stdout.write(f"ok: {host} leads {', '.join(symbols)}")
        elif leaders:
            self.stdout.write(f"ok: standby; leader {', '.join(sorted(map(str, leaders)))}")
        else:
            self.stdout.write("ok: no heartbeat yet")
