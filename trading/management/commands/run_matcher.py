"""``manage.py run_matcher [--markets BTC-USD,...]``: the only writer of the order books."""

import logging

from django.core.management.base import BaseCommand, CommandError

from trading.matcher.runner import Matcher
from trading.selectors import normalize_symbol


class Command(BaseCommand):
    help = "Match orders: consume order commands, settle trades, publish market data."

    def add_arguments(self, parser):
        parser.add_argument("--markets", default="", help="Comma-separated symbols (all if empty).")
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--poll-seconds", type=float, default=None)

    def handle(self, *args, markets, batch_size, poll_seconds, **options):
        logging.getLogger("trading.matcher").setLevel(logging.INFO)
        symbols = [normalize_symbol(s) for s in markets.split(",") if s.strip()] or None
        matcher = Matcher(symbols, batch_size=batch_size, poll_seconds=poll_seconds)
        matcher.install_signal_handlers()
        try:
            matcher.run()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
