from django.core.management.base import BaseCommand, CommandError

from marketdata.models import INTERVAL_SECONDS
from marketdata.services import candles_rebuild
from trading.exceptions import MarketNotFound
from trading.selectors import market_get_by_symbol


class Command(BaseCommand):
    help = "Recompute candles from the trades (all markets and intervals unless narrowed)."

    def add_arguments(self, parser):
        parser.add_argument("--market", help="Only this market (BTC-USD, BTC/USD or BTC_USD).")
        parser.add_argument("--interval", choices=list(INTERVAL_SECONDS), help="Only this one.")

    def handle(self, *args, market=None, interval=None, **options):
        market_ids = None
        if market:
            try:
                market_ids = [market_get_by_symbol(symbol=market).pk]
            except MarketNotFound as exc:
                raise CommandError(f"Unknown market {market!r}.") from exc
        written = candles_rebuild(market_ids=market_ids, intervals=[interval] if interval else None)
        self.stdout.write(f"{written} candles written.")
