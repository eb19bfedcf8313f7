"""Wallet endpoints: the caller's own balances, ledger, deposits and withdrawals only."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange_site.decimals import decimal_to_str
from exchange_site.throttling import client_address
from wallets import selectors, services
from wallets.api.filters import LedgerFilter
from wallets.api.serializers import (
    AssetOutputSerializer,
    DepositAddressOutputSerializer,
    DepositCreateInputSerializer,
    DepositOutputSerializer,
    LedgerEntryOutputSerializer,
    WalletOutputSerializer,
    WithdrawalCreateInputSerializer,
    WithdrawalOutputSerializer,
)
from wallets.models import Asset, Deposit, LedgerEntry, Withdrawal


@extend_schema(tags=["wallets"])
class AssetListApi(ListAPIView):
    """Every asset the exchange lists, with its precision and withdrawal terms (public)."""

    permission_classes = [AllowAny]
    serializer_class = AssetOutputSerializer
    pagination_class = None
    queryset = Asset.objects.filter(is_active=True).order_by("code")


class WalletListApi(APIView):
    @extend_schema(
        tags=["wallets"], operation_id="wallets_list", responses=WalletOutputSerializer(many=True)
    )
    def get(self, request):
        balances = selectors.balance_list_for_user(user=request.user)
        return Response(WalletOutputSerializer(balances, many=True).data)


_AMOUNT_TEXT = {"type": "string", "format": "decimal", "example": "10.50"}
ACCOUNT_BALANCE_SCHEMA = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "properties": {"available": _AMOUNT_TEXT, "locked": _AMOUNT_TEXT, "total": _AMOUNT_TEXT},
        "required": ["available", "locked", "total"],
    },
    "example": {"USD": {"available": "900.00", "locked": "100.00", "total": "1000.00"}},
}


class AccountBalanceApi(APIView):
    @extend_schema(
        tags=["wallets"],
        operation_id="account_balance",
        # A map keyed by the assets held, which no serializer describes.
        responses={200: ACCOUNT_BALANCE_SCHEMA},
        description='Balances keyed by asset code: `{"USD": {"available", "locked", "total"}}`.',
    )
    def get(self, request):
        balances = selectors.balance_list_for_user(user=request.user)
        return Response(
            {
                row.asset.code: {
                    "available": decimal_to_str(row.available, row.asset.precision),
                    "locked": decimal_to_str(row.locked, row.asset.precision),
                    "total": decimal_to_str(row.total, row.asset.precision),
                }
                for row in balances
            }
        )


class AccountPositionsApi(APIView):
    @extend_schema(
        tags=["wallets"],
        operation_id="account_positions",
        responses=WalletOutputSerializer(many=True),
        description="What the account holds: every asset with a non-zero balance (a spot "
        "exchange's positions; the path one of the seed systems documents).",
    )
    def get(self, request):
        held = [row for row in selectors.balance_list_for_user(user=request.user) if row.total]
        return Response(WalletOutputSerializer(held, many=True).data)


@extend_schema(tags=["wallets"])
class LedgerListApi(ListAPIView):
    """The caller's ledger, newest first; filter with ``?asset=BTC&kind=deposit``."""

    serializer_class = LedgerEntryOutputSerializer
    filterset_class = LedgerFilter
    queryset = LedgerEntry.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        return selectors.ledger_list_for_user(user=self.request.user)


@extend_schema_view(get=extend_schema(tags=["wallets"], operation_id="deposits_list"))
class DepositListCreateApi(ListAPIView):
    """The caller's deposits, newest first; POST is the demo faucet."""

    serializer_class = DepositOutputSerializer
    queryset = Deposit.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        return selectors.deposit_list_for_user(user=self.request.user)

    @extend_schema(
        tags=["wallets"],
        operation_id="deposits_create",
        request=DepositCreateInputSerializer,
        # 403: demo deposits are off; 422: over the per-request or daily cap, asset inactive.
        responses={201: DepositOutputSerializer, 403: None, 422: None},
        description="Demo faucet: credits at once when the exchange runs with DEMO_DEPOSITS on.",
    )
    def post(self, request):
        serializer = DepositCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        deposit = services.deposit_demo_create(
            user=request.user,
            asset_code=serializer.validated_data["asset"].code,
            amount=serializer.validated_data["amount"],
        )
        return Response(DepositOutputSerializer(deposit).data, status=status.HTTP_201_CREATED)


class DepositAddressApi(APIView):
    @extend_schema(
        tags=["wallets"], operation_id="deposit_address", responses=DepositAddressOutputSerializer
    )
    def get(self, request, asset):
        address = services.deposit_address_get_or_create(user=request.user, asset_code=asset)
        return Response(DepositAddressOutputSerializer(address).data)


@extend_schema_view(get=extend_schema(tags=["wallets"], operation_id="withdrawals_list"))
class WithdrawalListCreateApi(ListAPIView):
    """The caller's withdrawals, newest first; POST requests a new one."""

    serializer_class = WithdrawalOutputSerializer
    queryset = Withdrawal.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        return selectors.withdrawal_list_for_user(user=self.request.user)

    @extend_schema(
        tags=["wallets"],
        operation_id="withdrawals_create",
        request=WithdrawalCreateInputSerializer,
        # 403: frozen, email unconfirmed, or a two-factor code missing or wrong; 404: unknown
        # saved address; 422: balance, limit, allow-list, cool-down, asset inactive.
        responses={201: WithdrawalOutputSerializer, 403: None, 404: None, 422: None},
        description="Reserves amount + the asset's fee and emails the owner a link to confirm "
        "it (status `awaiting_confirmation`); once confirmed it waits for operators "
        "(`requested`, and `awaiting_second_approval` above the asset's four-eyes threshold). "
        "Unconfirmed requests expire and release their funds. Give `address`, or "
        "`address_id` (a saved address past its cool-down; required with the allow-list on). "
        "Over the 24-hour limit: 422 `WITHDRAWAL_LIMIT_EXCEEDED`, nothing reserved. With "
        "two-factor authentication on, `otp_code` must hold a current code (or a recovery "
        "code): else 403 `OTP_REQUIRED` / `OTP_INVALID`.",
    )
    def post(self, request):
        serializer = WithdrawalCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        withdrawal = services.withdrawal_request(
            user=request.user,
            asset_code=data["asset"].code,
            amount=data["amount"],
            address=data.get("address"),
            address_id=data.get("address_id"),
            otp_code=data.get("otp_code"),
            ip=client_address(request),
        )
        return Response(WithdrawalOutputSerializer(withdrawal).data, status=status.HTTP_201_CREATED)


class WithdrawalDetailApi(APIView):
    @extend_schema(
        tags=["wallets"], operation_id="withdrawals_get", responses=WithdrawalOutputSerializer
    )
    def get(self, request, withdrawal_id):
        withdrawal = get_object_or_404(
            selectors.withdrawal_list_for_user(user=request.user), pk=withdrawal_id
        )
        return Response(WithdrawalOutputSerializer(withdrawal).data)

    @extend_schema(
        tags=["wallets"],
        operation_id="withdrawals_cancel",
        # 200 with the cancelled withdrawal (not a bodiless 204); 409 once it is approved.
        responses={200: WithdrawalOutputSerializer, 409: None},
        description="Cancel a withdrawal no operator has approved yet (`awaiting_confirmation`, "
        "`requested` or `awaiting_second_approval`); its reserve is released.",
    )
    def delete(self, request, withdrawal_id):
        withdrawal = services.withdrawal_cancel(user=request.user, withdrawal_id=withdrawal_id)
        return Response(WithdrawalOutputSerializer(withdrawal).data)
