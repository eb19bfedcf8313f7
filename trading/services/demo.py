"""The demo markets ``make run`` and the benchmarks trade on."""

from decimal import Decimal

from django.db import transaction

from trading.models import Market
from wallets.models import Asset

DEMO_MARKETS = (
    # symbol, tick, lot, min qty, max qty, min notional
    ("BTC-USD", "0.01", "0.00001", "0.00001", "1000", "1"),
    ("ETH-USD", "0.01", "0.0001", "0.0001", "10000", "1"),
    ("SOL-USD", "0.001", "0.01", "0.01", "1000000", "1"),
    ("ETH-BTC", "0.000001", "0.0001", "0.0001", "10000", "0.0001"),
)


@transaction.atomic
def markets_seed() -> list[str]:
    """Create the demo markets (maker 0.10 %, taker 0.20 %) when missing; idempotent."""
    lines = []
    assets = {asset.code: asset for asset in Asset.objects.all()}
    for symbol, tick, lot, min_qty, max_qty, min_notional in DEMO_MARKETS:
        base, quote = symbol.split("-")
        if base not in assets or quote not in assets:
            continue
        _, created = Market.objects.get_or_create(
            symbol=symbol,
            defaults={
                "base_asset": assets[base],
                "quote_asset": assets[quote],
                "tick_size": Decimal(tick),
                "lot_size": Decimal(lot),
                "min_qty": Decimal(min_qty),
                "max_qty": Decimal(max_qty),
                "min_notional": Decimal(min_notional),
                "maker_fee": Decimal("0.001"),
                "taker_fee": Decimal("0.002"),
            },
        )
        lines.append(f"{'created' if created else 'exists '} market {symbol}")
    return lines
