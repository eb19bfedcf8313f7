"""One order placement's database work behind DRF, and the load generator's preflight."""

import json

from django.db import connection, transaction
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

PLACE_SQL = {
    "reserve": (
        "UPDATE yard_balance SET available = available - %s, locked = locked + %s "
        "WHERE user_id = %s AND asset = %s AND available >= %s"
    ),
    "order": (
        "INSERT INTO yard_order (user_id, symbol, side, order_type, price, quantity, "
        "reserved, status) VALUES (%s, %s, %s, %s, %s, %s, %s, 'new') "
        "RETURNING id, created_at"
    ),
    "outbox": "INSERT INTO yard_outbox (payload) VALUES (%s)",
    "ledger": (
        "INSERT INTO yard_ledger (user_id, asset, delta_available, delta_locked, kind, "
        "order_id) VALUES (%s, %s, %s, %s, 'order_reserve', %s), "
        "(%s, %s, 0, 0, 'order_accepted', %s)"
    ),
}


class OrderIn(serializers.Serializer):
    symbol = serializers.CharField(max_length=20)
    side = serializers.ChoiceField(choices=["buy", "sell"])
    order_type = serializers.ChoiceField(choices=["limit"])
    price = serializers.DecimalField(max_digits=36, decimal_places=18, min_value=0)
    quantity = serializers.DecimalField(max_digits=36, decimal_places=18, min_value=0)


def _user_id(request) -> int:
    # The generator sends "Bearer yard-<n>"; nothing is verified (the bare view's point).
    token = request.META.get("HTTP_AUTHORIZATION", "")
    return int(token.rpartition("-")[2] or 1)


class OrderCreateView(APIView):
    def post(self, request):
        data = OrderIn(data=request.data)
        data.is_valid(raise_exception=True)
        order = data.validated_data
        user_id = _user_id(request)
        if order["side"] == "buy":
            asset, reserve = "USD", order["price"] * order["quantity"]
        else:
            asset, reserve = "BTC", order["quantity"]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(PLACE_SQL["reserve"], [reserve, reserve, user_id, asset, reserve])
            if cursor.rowcount != 1:
                return Response(
                    {"error": {"code": "INSUFFICIENT_BALANCE"}},
                    status=status.HTTP_422_UNPROCESSABLE_ENTITY,
                )
            cursor.execute(
                PLACE_SQL["order"],
                [
                    user_id,
                    order["symbol"],
                    order["side"],
                    order["order_type"],
                    order["price"],
                    order["quantity"],
                    reserve,
                ],
            )
            order_id, created_at = cursor.fetchone()
            cursor.execute(
                PLACE_SQL["outbox"],
                [json.dumps({"type": "place", "order_id": order_id, "user_id": user_id})],
            )
            cursor.execute(
                PLACE_SQL["ledger"],
                [user_id, asset, -reserve, reserve, order_id, user_id, asset, order_id],
            )
        return Response(
            {
                "id": order_id,
                "symbol": order["symbol"],
                "side": order["side"],
                "order_type": order["order_type"],
                "price": str(order["price"]),
                "quantity": str(order["quantity"]),
                "status": "new",
                "created_at": created_at.isoformat(),
            },
            status=status.HTTP_201_CREATED,
        )


class ProfileView(APIView):
    def get(self, request):
        return Response({"id": _user_id(request)})
