from decimal import Decimal

import factory

from wallets.models import Asset


class AssetFactory(factory.django.DjangoModelFactory):
    """A BTC-like asset: 8 decimal places, a minimum withdrawal, a fee, 2 confirmations."""

    class Meta:
        model = Asset
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"TK{n}")
    name = factory.LazyAttribute(lambda asset: f"Token {asset.code}")
    precision = 8
    min_withdrawal = Decimal("0.001")
    withdrawal_fee = Decimal("0.0005")
    confirmations_required = 2
    # Priced, so withdrawals count against the limits without a market (wallets.limits).
    reference_price = Decimal("1")
    is_active = True
