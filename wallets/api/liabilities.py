"""Proof of liabilities over the API: the published roots (public) and the caller's own
inclusion proof (docs/PROOF_OF_LIABILITIES.md). The serializers describe the answers."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from wallets.liabilities import (
    liability_proof_for_user,
    liability_roots_get,
    liability_snapshot_get,
)

_HEX = r"^[0-9a-f]*$"


class LiabilitySnapshotQuerySerializer(serializers.Serializer):
    snapshot = serializers.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        required=False,
        help_text="A snapshot id; default: the newest.",
    )


class LiabilityRootOutputSerializer(serializers.Serializer):
    asset = serializers.CharField()
    root_hash = serializers.RegexField(_HEX, help_text="Hex SHA-256 of the tree's root.")
    total = serializers.CharField(help_text="Sum of every account's balance, decimal.")
    total_units = serializers.CharField(help_text="The same in units of 1e-18, an integer.")
    leaf_count = serializers.IntegerField(help_text="Accounts with a balance in this asset.")


class LiabilityRootsOutputSerializer(serializers.Serializer):
    scheme = serializers.CharField()
    snapshot_id = serializers.IntegerField()
    taken_at = serializers.DateTimeField()
    assets = LiabilityRootOutputSerializer(many=True)


class LiabilityPathStepOutputSerializer(serializers.Serializer):
    # A plain string: a ChoiceField would be an enum named like the orders' "side".
    side = serializers.CharField(help_text='Where the sibling sits: "left" or "right".')
    hash = serializers.RegexField(_HEX)
    sum = serializers.CharField(help_text="Units of 1e-18, an integer.")


class LiabilityProofAssetOutputSerializer(LiabilityRootOutputSerializer):
    user_id = serializers.IntegerField()
    salt = serializers.RegexField(_HEX)
    balance = serializers.CharField(help_text="available + locked at the snapshot.")
    balance_units = serializers.CharField()
    index = serializers.IntegerField()
    leaf_hash = serializers.RegexField(_HEX)
    path = LiabilityPathStepOutputSerializer(many=True)


class LiabilityProofOutputSerializer(serializers.Serializer):
    scheme = serializers.CharField()
    snapshot_id = serializers.IntegerField()
    taken_at = serializers.DateTimeField()
    user_id = serializers.IntegerField()
    assets = LiabilityProofAssetOutputSerializer(many=True)


def _snapshot(request):
    query = LiabilitySnapshotQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return liability_snapshot_get(snapshot_id=query.validated_data.get("snapshot"))


class LiabilityRootsApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["wallets"],
        operation_id="liabilities_roots",
        parameters=[LiabilitySnapshotQuerySerializer],
        responses={200: LiabilityRootsOutputSerializer, 404: None},
        description="Public: the root hash, total and number of accounts of each asset's "
        "Merkle sum tree in the newest snapshot (or `?snapshot=`). 404 before the first.",
    )
    def get(self, request):
        return Response(liability_roots_get(snapshot=_snapshot(request)))


class LiabilityProofApi(APIView):
    @extend_schema(
        tags=["wallets"],
        operation_id="liabilities_proof",
        parameters=[LiabilitySnapshotQuerySerializer],
        responses={200: LiabilityProofOutputSerializer, 404: None},
        description="The caller's leaf in each asset's tree (salt, balance, index) and the "
        "path of sibling hashes and sums to the published root; check it with "
        "`scripts/verify_liabilities.py`. Assets the caller held none of are absent.",
    )
    def get(self, request):
        return Response(liability_proof_for_user(user=request.user, snapshot=_snapshot(request)))
