"""``GET /api/v1/account/fees``: the caller's fee tier, 30-day volume and rates
(ARCHITECTURE §4 "Fees"), the same rates the matcher charges."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.fee_selectors import fee_summary_for_user


class FeeTierOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    min_volume = serializers.CharField(help_text="30-day volume from which it applies (USD).")
    maker_fee = serializers.CharField(help_text="A rate: 0.001 is 0.1 %.")
    taker_fee = serializers.CharField()


class MarketFeeOutputSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    maker_fee = serializers.CharField(help_text="What the account pays here as maker.")
    taker_fee = serializers.CharField()


class AccountFeesOutputSerializer(serializers.Serializer):
    reference_asset = serializers.CharField(help_text="The asset volumes are valued in (USD).")
    volume_30d = serializers.CharField(help_text="Traded volume of the last 30 days.")
    volume_updated_at = serializers.DateTimeField(
        allow_null=True, help_text="When the volume was last computed (daily)."
    )
    tier = FeeTierOutputSerializer(allow_null=True)
    tier_pinned = serializers.BooleanField(help_text="Set by an operator, whatever the volume.")
    maker_fee = serializers.CharField(
        allow_null=True, help_text="The account's own rate (tier or override)."
    )
    taker_fee = serializers.CharField(allow_null=True)
    maker_fee_overridden = serializers.BooleanField()
    taker_fee_overridden = serializers.BooleanField()
    next_tier = FeeTierOutputSerializer(allow_null=True)
    markets = MarketFeeOutputSerializer(many=True)
    schedule = FeeTierOutputSerializer(many=True)


class AccountFeesApi(APIView):
    @extend_schema(
        tags=["fees"],
        operation_id="account_fees",
        responses=AccountFeesOutputSerializer,
        description="The account's fee tier (by 30-day traded volume in USD, recomputed "
        "daily), its own maker and taker rates, what it pays in each market (its rates scaled "
        "by the market's own: a market at the base tier's rates charges them as they are) and "
        "the whole schedule.",
    )
    def get(self, request):
        return Response(fee_summary_for_user(user=request.user))
