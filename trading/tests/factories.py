from decimal import Decimal

import factory

from trading.models import Market
from wallets.tests.factories import AssetFactory


class MarketFactory(factory.django.DjangoModelFactory):
    """BTC-USD as the exchange lists it: tick 0.01, lot 0.00001, maker 0.1 %, taker 0.2 %."""

    class Meta:
        model = Market
        django_get_or_create = ("symbol",)

    symbol = "BTC-USD"
    base_asset = factory.SubFactory(
        AssetFactory, code="BTC", name="Bitcoin", precision=8, confirmations_required=2
    )
    quote_asset = factory.SubFactory(
        AssetFactory,
        code="USD",
        name="US Dollar",
        precision=2,
        min_withdrawal=Decimal("10"),
        withdrawal_fee=Decimal("1"),
        confirmations_required=0,
    )
    tick_size = Decimal("0.01")
    lot_size = Decimal("0.00001")
    min_qty = Decimal("0.00001")
    max_qty = Decimal("1000")
    min_notional = Decimal("1")
    maker_fee = Decimal("0.001")
    taker_fee = Decimal("0.002")
    status = Market.Status.TRADING
