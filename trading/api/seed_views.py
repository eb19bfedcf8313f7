"""Seed 003's order paths (../shared/seeds/003…: "Order Management"), for clients written
against that document: ``POST /api/v1/order`` and ``DELETE /api/v1/order`` with a JSON
body, and ``GET /api/v1/openOrders?market=``. They call the same services as ``/orders``.

The document's bodies carry a ``userId``: the server it describes trusted it. Here it is
ignored (the caller is whoever authenticates) and documented so (docs/API.md).

Its order entry answered after matching, with ``executedQty`` (its test scenario reads it), so
``POST /api/v1/order`` waits for the matcher as ``/api/v3/order`` does (up to
``BINANCE_ORDER_WAIT_MS``) and adds ``orderId``, ``executedQty`` and ``fills`` to the order."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange_site.decimals import decimal_places, decimal_to_str
from exchange_site.throttling import (
    OrderCancelRateThrottle,
    OrderPlaceRateThrottle,
    PrivateReadRateThrottle,
)
from trading import selectors, services
from trading.api.serializers import OrderOutputSerializer, order_output
from trading.api.views import order_place_response
from trading.binance.selectors import order_fills, orders_wait_settled
from trading.exceptions import OrderNotFound
from trading.models import Order, OrderCommand


class SeedOrderPlaceInputSerializer(serializers.Serializer):
    market = serializers.CharField(max_length=40, help_text="`BTC_USD`, `BTC-USD` or `BTC/USD`.")
    side = serializers.CharField(max_length=8)
    price = serializers.CharField(max_length=64)
    quantity = serializers.CharField(max_length=64)
    userId = serializers.CharField(
        required=False, allow_blank=True, help_text="Ignored: the caller is who authenticates."
    )


class SeedOrderCancelInputSerializer(serializers.Serializer):
    orderId = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    market = serializers.CharField(max_length=40, required=False)


class SeedOrderApi(APIView):
    throttle_classes = [OrderPlaceRateThrottle, OrderCancelRateThrottle]

    @extend_schema(
        tags=["orders"],
        operation_id="seed_order_place",
        request=SeedOrderPlaceInputSerializer,
        responses={
            201: OrderOutputSerializer,
            200: OrderOutputSerializer,
            400: None,
            404: None,
            422: None,
        },
        description=(
            "Seed 003's order entry: a limit order of `market`, answered once the matcher has"
            " run it (up to `BINANCE_ORDER_WAIT_MS`), with `orderId`, `executedQty` and `fills`."
        ),
    )
    def post(self, request):
        body = SeedOrderPlaceInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        placed = order_place_response(
            request,
            {
                "symbol": body.validated_data["market"],
                "side": body.validated_data["side"],
                "order_type": "limit",
                "price": body.validated_data["price"],
                "quantity": body.validated_data["quantity"],
            },
        )
        [order] = orders_wait_settled(order_ids=[placed.data["id"]], kind=OrderCommand.Kind.PLACE)
        answer = order_output(order)
        answer.update(orderId=order.pk, executedQty=answer["filled_quantity"], fills=_fills(order))
        return Response(answer, status=placed.status_code)

    @extend_schema(
        tags=["orders"],
        operation_id="seed_order_cancel",
        request=SeedOrderCancelInputSerializer,
        responses={202: OrderOutputSerializer, 400: None, 404: None, 409: None},
        description="Seed 003's cancel: the body names the order (and its market).",
    )
    def delete(self, request):
        body = SeedOrderCancelInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order_id = body.validated_data["orderId"]
        order = selectors.order_get_for_user(user=request.user, order_id=order_id)
        market = body.validated_data.get("market")
        if market and selectors.market_get_by_symbol(symbol=market).pk != order.market_id:
            raise OrderNotFound(details={"order_id": order_id, "market": market})
        order = services.order_cancel(user=request.user, order_id=order_id)
        return Response(order_output(order), status=status.HTTP_202_ACCEPTED)


def _fills(order: Order) -> list[dict]:
    """The order's trades as seed 003's engine reported them: price, qty, tradeId."""
    price_places = decimal_places(order.market.tick_size)
    qty_places = decimal_places(order.market.lot_size)
    return [
        {
            "price": decimal_to_str(trade.price, price_places),
            "qty": decimal_to_str(trade.quantity, qty_places),
            "tradeId": trade.pk,
        }
        for trade in order_fills(order=order)
    ]


class SeedOpenOrdersApi(APIView):
    throttle_classes = [PrivateReadRateThrottle]

    @extend_schema(
        tags=["orders"],
        operation_id="seed_open_orders",
        parameters=[OpenApiParameter("market", str, required=True)],
        responses={200: OrderOutputSerializer(many=True), 400: None, 404: None},
        description="Seed 003's open orders: the caller's working orders of `market`.",
    )
    def get(self, request):
        market = request.query_params.get("market")
        if not market:
            raise serializers.ValidationError({"market": ["This field is required."]})
        orders = selectors.order_list_for_user(user=request.user).filter(
            market=selectors.market_get_by_symbol(symbol=market), status__in=Order.LIVE
        )
        return Response([order_output(order) for order in orders[:500]])
