"""Market data kept in the database: OHLCV candles (ARCHITECTURE §6).

Candles are derived data: the matcher updates them in the same transaction as the trades
they count (``marketdata.services.candles_apply_trades``), and ``manage.py rebuild_candles``
recomputes them from the trades at any time.
"""

from django.db import models
from django.db.models import Q

from trading.models import Market
from wallets.models import AmountField


class Candle(models.Model):
    """One market's trades in one time bucket of one interval.

    ``open_time`` is the bucket's start in UTC: the trade time floored to a multiple of the
    interval since the Unix epoch (so 1d starts at midnight UTC and 4h at 00, 04, ... UTC).
    Buckets without trades have no row. ``open`` and ``close`` are the prices of the
    bucket's first and last trade by id.
    """

    class Interval(models.TextChoices):
        M1 = "1m", "1 minute"
        M5 = "5m", "5 minutes"
        M15 = "15m", "15 minutes"
        H1 = "1h", "1 hour"
        H4 = "4h", "4 hours"
        D1 = "1d", "1 day"

    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="candles")
    interval = models.CharField(max_length=3, choices=Interval.choices)
    open_time = models.DateTimeField()
    open = AmountField(default=None)
    high = AmountField(default=None)
    low = AmountField(default=None)
    close = AmountField(default=None)
    volume = AmountField(help_text="Traded quantity, in the base asset.")
    quote_volume = AmountField(help_text="Traded notional, in the quote asset.")
    trade_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["market_id", "interval", "open_time"]
        constraints = [
            # Its index (market, interval, open_time) also serves every range query.
            models.UniqueConstraint(
                fields=["market", "interval", "open_time"], name="candle_one_per_bucket"
            ),
            models.CheckConstraint(
                condition=Q(low__lte=models.F("high")) & Q(low__gt=0), name="candle_low_le_high"
            ),
        ]

    def __str__(self):
        return f"{self.market_id} {self.interval} {self.open_time:%Y-%m-%d %H:%M}"


# Plain strings, not the enum members: raw SQL parameters must be the values.
INTERVAL_SECONDS: dict[str, int] = {
    "1m": 60,
    "5m": 5 * 60,
    "15m": 15 * 60,
    "1h": 60 * 60,
    "4h": 4 * 60 * 60,
    "1d": 24 * 60 * 60,
}
