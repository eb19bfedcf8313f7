"""Withdrawal controls over the API: the caller's 24-hour limit, saved addresses and the
allow-list, and the emailed confirmation link for clients that open it themselves."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange_site.throttling import client_address
from wallets import limits, services
from wallets.address_book import withdrawal_address_list_for_user, withdrawal_profile_get
from wallets.api.serializers import (
    WithdrawalAddressInputSerializer,
    WithdrawalAddressOutputSerializer,
    WithdrawalLimitOutputSerializer,
    WithdrawalLinkInputSerializer,
    WithdrawalOutputSerializer,
    WithdrawalSettingsInputSerializer,
    WithdrawalSettingsOutputSerializer,
)


class WithdrawalLimitApi(APIView):
    @extend_schema(
        tags=["wallets"],
        operation_id="withdrawal_limits",
        responses=WithdrawalLimitOutputSerializer,
        description="The caller's withdrawal tier and rolling 24-hour limit, valued in the "
        "reference asset (USD) at the markets' last prices: what was used and what is left.",
    )
    def get(self, request):
        return Response(limits.withdrawal_limit_summary(user=request.user))


class WithdrawalAddressListCreateApi(APIView):
    @extend_schema(
        tags=["wallets"],
        operation_id="withdrawal_addresses_list",
        responses=WithdrawalAddressOutputSerializer(many=True),
    )
    def get(self, request):
        saved = withdrawal_address_list_for_user(user=request.user)
        return Response(WithdrawalAddressOutputSerializer(saved, many=True).data)

    @extend_schema(
        tags=["wallets"],
        operation_id="withdrawal_addresses_create",
        request=WithdrawalAddressInputSerializer,
        responses={201: WithdrawalAddressOutputSerializer, 403: None, 409: None},
        description="Save an address under a label. It is usable after the cool-down "
        "(`address_cooldown_seconds` of the withdrawal settings); the owner is emailed. "
        "With two-factor authentication on, `otp_code` is required.",
    )
    def post(self, request):
        serializer = WithdrawalAddressInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        saved = services.withdrawal_address_add(
            user=request.user,
            asset_code=data["asset"].code,
            address=data["address"],
            label=data["label"],
            otp_code=data.get("otp_code"),
            ip=client_address(request),
        )
        return Response(
            WithdrawalAddressOutputSerializer(saved).data, status=status.HTTP_201_CREATED
        )


class WithdrawalAddressDetailApi(APIView):
    @extend_schema(
        tags=["wallets"], operation_id="withdrawal_addresses_delete", responses={204: None}
    )
    def delete(self, request, address_id):
        services.withdrawal_address_delete(user=request.user, address_id=address_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _settings_payload(user) -> dict:
    profile = withdrawal_profile_get(user=user)
    return {
        "allowlist_enabled": profile.allowlist_enabled,
        "allowlist_changed_at": profile.allowlist_changed_at,
        "address_cooldown_seconds": settings.WITHDRAWAL_ADDRESS_COOLDOWN_SECONDS,
    }


class WithdrawalSettingsApi(APIView):
    @extend_schema(
        tags=["wallets"],
        operation_id="withdrawal_settings",
        responses=WithdrawalSettingsOutputSerializer,
    )
    def get(self, request):
        return Response(WithdrawalSettingsOutputSerializer(_settings_payload(request.user)).data)

    @extend_schema(
        tags=["wallets"],
        operation_id="withdrawal_settings_update",
        request=WithdrawalSettingsInputSerializer,
        responses={200: WithdrawalSettingsOutputSerializer, 403: None},
        description="Turn the allow-list on or off. Turning it off needs `otp_code` when "
        "two-factor authentication is on; either change is emailed to the owner.",
    )
    def put(self, request):
        serializer = WithdrawalSettingsInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.withdrawal_allowlist_set(
            user=request.user,
            enabled=serializer.validated_data["allowlist_enabled"],
            otp_code=serializer.validated_data.get("otp_code"),
            ip=client_address(request),
        )
        return Response(WithdrawalSettingsOutputSerializer(_settings_payload(request.user)).data)


class WithdrawalConfirmApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["wallets"],
        operation_id="withdrawals_confirm",
        request=WithdrawalLinkInputSerializer,
        responses={200: WithdrawalOutputSerializer, 400: None, 409: None},
        description="Confirm a withdrawal with the token of its emailed link (what the "
        "link's page does): it then waits for review. No login needed: the token is the proof.",
    )
    def post(self, request):
        serializer = WithdrawalLinkInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        withdrawal = services.withdrawal_confirm(token=serializer.validated_data["token"])
        return Response(WithdrawalOutputSerializer(withdrawal).data)
