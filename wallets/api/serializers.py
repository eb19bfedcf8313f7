from collections.abc import Mapping

from django.utils import timezone
from rest_framework import serializers

from exchange_site.decimals import decimal_to_str
from exchange_site.fields import AssetAmountField, DecimalInputField
from wallets.limits import reference_to_str
from wallets.models import Asset, Deposit, LedgerEntry, Withdrawal, WithdrawalAddress


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


class OtpCodeField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(
            max_length=64,
            required=False,
            allow_blank=True,
            help_text="With two-factor authentication on: a current code, or a recovery code.",
            **kwargs,
        )


class WithdrawalCreateInputSerializer(serializers.Serializer):
    asset = AssetCodeField()
    amount = DecimalInputField()
    address = serializers.CharField(
        max_length=128,
        trim_whitespace=False,
        required=False,
        help_text="The destination; or give `address_id`, a saved address.",
    )
    address_id = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="A saved address's id."
    )
    otp_code = OtpCodeField()

    def to_internal_value(self, data):
        # Named with the other fields' errors, not after them: exactly one of the two.
        errors, attrs = {}, None
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)
        try:
            attrs = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors = dict(exc.detail)
        # A body that is not an object already has its error from DRF.
        # An HTML form sends both, the unused one empty.
        given = [name for name in ("address", "address_id") if data.get(name) not in (None, "")]
        if len(given) != 1 and "address" not in errors:
            errors["address"] = ["Give either `address` or `address_id` (a saved address)."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class WithdrawalOutputSerializer(serializers.ModelSerializer):
    asset = serializers.CharField(source="asset.code")
    amount = AssetAmountField()
    fee = AssetAmountField()
    limit_value = serializers.SerializerMethodField(
        help_text="What it counts against the 24-hour limit, in the reference asset."
    )

    class Meta:
        model = Withdrawal
        fields = [
            "id",
            "asset",
            "amount",
            "fee",
            "address",
            "status",
            "limit_value",
            "needs_second_approval",
            "tx_id",
            "review_note",
            "created_at",
            "expires_at",
            "confirmed_at",
            "reviewed_at",
            "completed_at",
        ]

    def get_limit_value(self, withdrawal) -> str:
        return reference_to_str(withdrawal.limit_value)


class WithdrawalLinkInputSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=512, help_text="The token of the emailed link.")


class WithdrawalLimitOutputSerializer(serializers.Serializer):
    tier = serializers.CharField(allow_null=True, help_text="Null until the email is confirmed.")
    tier_name = serializers.CharField(allow_null=True)
    reference_asset = serializers.CharField()
    window_hours = serializers.IntegerField()
    daily_limit = serializers.CharField()
    used = serializers.CharField()
    remaining = serializers.CharField()


class WithdrawalAddressInputSerializer(serializers.Serializer):
    asset = AssetCodeField()
    address = serializers.CharField(max_length=128, trim_whitespace=False)
    label = serializers.CharField(max_length=64)
    otp_code = OtpCodeField()


class WithdrawalAddressOutputSerializer(serializers.ModelSerializer):
    asset = serializers.CharField(source="asset.code")
    usable = serializers.SerializerMethodField(help_text="Past its cool-down.")

    class Meta:
        model = WithdrawalAddress
        fields = ["id", "asset", "address", "label", "created_at", "usable_from", "usable"]

    def get_usable(self, saved) -> bool:
        return saved.usable_from <= timezone.now()


class WithdrawalSettingsInputSerializer(serializers.Serializer):
    allowlist_enabled = serializers.BooleanField()
    otp_code = OtpCodeField()


class WithdrawalSettingsOutputSerializer(serializers.Serializer):
    allowlist_enabled = serializers.BooleanField()
    allowlist_changed_at = serializers.DateTimeField(allow_null=True)
    address_cooldown_seconds = serializers.IntegerField()
