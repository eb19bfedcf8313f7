from rest_framework import serializers

from exchange_site.decimals import decimal_to_str
from exchange_site.fields import AssetAmountField, DecimalInputField
from wallets.models import Asset, Deposit, LedgerEntry, Withdrawal


class AssetCodeField(serializers.SlugRelatedField):
    """An asset named by its code, any case ("btc" → BTC)."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="code", queryset=Asset.objects.all(), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or len(data) > 12:
            self.fail("invalid")
        return super().to_internal_value(data.strip().upper())


class AssetOutputSerializer(serializers.ModelSerializer):
    min_withdrawal = serializers.SerializerMethodField()
    withdrawal_fee = serializers.SerializerMethodField()

    class Meta:
        model = Asset
        fields = [
            "code",
            "name",
            "precision",
            "min_withdrawal",
            "withdrawal_fee",
            "confirmations_required",
            "is_active",
        ]

    def get_min_withdrawal(self, asset) -> str:
        return decimal_to_str(asset.min_withdrawal, asset.precision)

    def get_withdrawal_fee(self, asset) -> str:
        return decimal_to_str(asset.withdrawal_fee, asset.precision)


class WalletOutputSerializer(serializers.Serializer):
    asset = serializers.CharField(source="asset.code")
    name = serializers.CharField(source="asset.name")
    available = AssetAmountField()
    locked = AssetAmountField()
    total = AssetAmountField()


class LedgerEntryOutputSerializer(serializers.ModelSerializer):
    asset = serializers.CharField(source="asset.code")
    available_delta = AssetAmountField()
    locked_delta = AssetAmountField()

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "asset",
            "kind",
            "available_delta",
            "locked_delta",
            "reference_type",
            "reference_id",
            "memo",
            "created_at",
        ]


class DepositCreateInputSerializer(serializers.Serializer):
    asset = AssetCodeField()
    amount = DecimalInputField()


class DepositOutputSerializer(serializers.ModelSerializer):
    asset = serializers.CharField(source="asset.code")
    amount = AssetAmountField()

    class Meta:
        model = Deposit
        fields = [
            "id",
            "asset",
            "amount",
            "status",
            "tx_id",
            "address",
            "confirmations",
            "confirmations_required",
            "created_at",
            "confirmed_at",
        ]


class DepositAddressOutputSerializer(serializers.Serializer):
    asset = serializers.CharField(source="asset.code")
    address = serializers.CharField()
    confirmations_required = serializers.IntegerField(source="asset.confirmations_required")


class WithdrawalCreateInputSerializer(serializers.Serializer):
    asset = AssetCodeField()
    amount = DecimalInputField()
    address = serializers.CharField(max_length=128, trim_whitespace=False)
    otp_code = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="With two-factor authentication on: a current code, or a recovery code.",
    )


class WithdrawalOutputSerializer(serializers.ModelSerializer):
    asset = serializers.CharField(source="asset.code")
    amount = AssetAmountField()
    fee = AssetAmountField()

    class Meta:
        model = Withdrawal
        fields = [
            "id",
            "asset",
            "amount",
            "fee",
            "address",
            "status",
            "tx_id",
            "review_note",
            "created_at",
            "reviewed_at",
            "completed_at",
        ]
