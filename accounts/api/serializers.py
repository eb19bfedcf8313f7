from django.contrib.auth.validators import UnicodeUsernameValidator
from rest_framework import serializers

from accounts.models import ApiKey, AuthSession, LoginEvent, User
from accounts.services import API_KEY_PERMISSIONS


class UserOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "username",
            "full_name",
            "is_verified",
            "email_verified_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class RegisterInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    username = serializers.CharField(
        min_length=3, max_length=32, validators=[UnicodeUsernameValidator()]
    )
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    full_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class LoginInputSerializer(serializers.Serializer):
    email = serializers.CharField(
        max_length=254, required=False, help_text="Email address, or a username."
    )
    username = serializers.CharField(
        max_length=254, required=False, help_text="Username (or email) when `email` is absent."
    )
    password = serializers.CharField(max_length=128, trim_whitespace=False)
    otp_code = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="With two-factor authentication on: a current code, or a recovery code. "
        "Without it the answer is 401 `OTP_REQUIRED`.",
    )

    def validate(self, attrs):
        login = attrs.get("email") or attrs.get("username")
        if not login:
            raise serializers.ValidationError({"email": ["Give an email or a username."]})
        return {"login": login, "password": attrs["password"], "otp_code": attrs.get("otp_code")}


class TokenPairOutputSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField(help_text='Always "bearer".')
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")
    refresh_expires_in = serializers.IntegerField(
        help_text="Seconds until the refresh token expires."
    )


class RefreshTokenInputSerializer(serializers.Serializer):
    refresh_token = serializers.CharField(max_length=4096)


class ProfileUpdateInputSerializer(serializers.Serializer):
    username = serializers.CharField(
        min_length=3, max_length=32, validators=[UnicodeUsernameValidator()]
    )
    full_name = serializers.CharField(max_length=150, allow_blank=True)


class ApiKeyCreateInputSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=64)
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=API_KEY_PERMISSIONS),
        min_length=1,
        max_length=len(API_KEY_PERMISSIONS),
        default=["read"],
        help_text="`read` (account, orders, trades) and/or `trade` (place and cancel orders).",
    )
    ip_allowlist = serializers.ListField(
        child=serializers.CharField(max_length=50),
        required=False,
        default=list,
        help_text="IP addresses or CIDR networks the key may be used from; empty = any.",
    )
    otp_code = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="With two-factor authentication on: a current code, or a recovery code.",
    )


class ApiKeyOutputSerializer(serializers.ModelSerializer):
    permissions = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = ["id", "label", "key", "permissions", "ip_allowlist", "created_at", "last_used_at"]
        read_only_fields = fields

    def get_permissions(self, api_key) -> list[str]:
        return [
            name
            for name, granted in (("read", api_key.can_read), ("trade", api_key.can_trade))
            if granted
        ]


class ApiKeyCreatedOutputSerializer(ApiKeyOutputSerializer):
    secret = serializers.SerializerMethodField(
        help_text="Shown only in this answer; the exchange cannot show it again."
    )

    class Meta(ApiKeyOutputSerializer.Meta):
        fields = [*ApiKeyOutputSerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, api_key) -> str:
        return self.context["secret"]


class ApiKeyListOutputSerializer(serializers.Serializer):
    results = ApiKeyOutputSerializer(many=True)


# --- Two-factor authentication --------------------------------------------------------------


class OtpCodeField(serializers.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("help_text", "A current code from the authenticator app.")
        super().__init__(**kwargs)


class TwoFactorStatusOutputSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    pending = serializers.BooleanField(help_text="An enrolment waits for its first code.")
    enabled_at = serializers.DateTimeField(allow_null=True)
    recovery_codes_left = serializers.IntegerField()


class TwoFactorEnrolOutputSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The key to type into the app (base32).")
    provisioning_uri = serializers.CharField(help_text="The `otpauth://` URI the QR code holds.")
    qr_code = serializers.CharField(help_text="The QR code as an SVG `data:` URI.")


class TwoFactorConfirmInputSerializer(serializers.Serializer):
    otp_code = OtpCodeField()


class TwoFactorCodeInputSerializer(serializers.Serializer):
    otp_code = OtpCodeField(help_text="A current code, or a recovery code.")


class TwoFactorDisableInputSerializer(serializers.Serializer):
    password = serializers.CharField(max_length=128, trim_whitespace=False)
    otp_code = OtpCodeField(help_text="A current code, or a recovery code.")


class RecoveryCodesOutputSerializer(serializers.Serializer):
    recovery_codes = serializers.ListField(
        child=serializers.CharField(),
        help_text="Each works once in place of a code. Shown only in this answer.",
    )


# --- Email verification, password recovery, credential changes -----------------------------


class EmailInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class TokenInputSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=1024, help_text="The token from the emailed link.")


class PasswordResetConfirmInputSerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=64, help_text="The `uid` part of the emailed link.")
    token = serializers.CharField(max_length=128, help_text="The `token` part of the link.")
    new_password = serializers.CharField(max_length=128, trim_whitespace=False)


class PasswordChangeInputSerializer(serializers.Serializer):
    current_password = serializers.CharField(max_length=128, trim_whitespace=False)
    new_password = serializers.CharField(max_length=128, trim_whitespace=False)
    otp_code = OtpCodeField(required=False, allow_blank=True, help_text="With 2FA on.")


class EmailChangeInputSerializer(serializers.Serializer):
    new_email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False)
    otp_code = OtpCodeField(required=False, allow_blank=True, help_text="With 2FA on.")


class DetailOutputSerializer(serializers.Serializer):
    detail = serializers.CharField()


# --- Sessions and login history -----------------------------------------------------------


class AuthSessionOutputSerializer(serializers.ModelSerializer):
    current = serializers.SerializerMethodField(help_text="The session of this request.")

    class Meta:
        model = AuthSession
        fields = [
            "id",
            "kind",
            "device",
            "user_agent",
            "ip",
            "created_at",
            "last_used_at",
            "expires_at",
            "current",
        ]
        read_only_fields = fields

    def get_current(self, auth_session) -> bool:
        return auth_session.pk == self.context.get("current_session_id")


class AuthSessionListOutputSerializer(serializers.Serializer):
    results = AuthSessionOutputSerializer(many=True)


class RevokedCountOutputSerializer(serializers.Serializer):
    revoked = serializers.IntegerField(help_text="How many sessions were ended.")


class LoginEventOutputSerializer(serializers.ModelSerializer):
    success = serializers.BooleanField(source="succeeded")
    outcome_display = serializers.CharField(source="get_outcome_display")

    class Meta:
        model = LoginEvent
        fields = [
            "id",
            "created_at",
            "success",
            "outcome",
            "outcome_display",
            "channel",
            "ip",
            "device",
            "user_agent",
        ]
        read_only_fields = fields
