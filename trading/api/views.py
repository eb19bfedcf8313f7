"""Order endpoints: parse, call a service, render. Another user's order is always a 404."""

import json
import threading
from decimal import Decimal

from django.conf import settings
from django.utils.datastructures import MultiValueDict
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import ValidationError
from rest_framework.views import APIView

from accounts.authentication import JWTAuthentication
from exchange_site.exception_handler import exchange_exception_handler
from exchange_site.exceptions import ExchangeError
from exchange_site.parsers import refuse_constant
from exchange_site.throttling import (
    OrderBatchRateThrottle,
    OrderCancelRateThrottle,
    OrderPlaceRateThrottle,
    PrivateReadRateThrottle,
)
from trading import selectors, services
from trading.api.serializers import (
    OcoPlaceInputSerializer,
    OrderAmendInputSerializer,
    OrderBatchInputSerializer,
    OrderListOutputSerializer,
    OrderOutputSerializer,
    OrderPlaceInputSerializer,
    OrderReplaceInputSerializer,
    TradeOutputSerializer,
    order_list_output,
    order_output,
)
from trading.models import Order, Trade

# "live" names every status an order can still trade in; "pending" is the seed document's word
# for it (docs/API.md). ("open" is a status of its own: resting on the book.)
LIVE_ALIASES = ("live", "pending")
# Seed 000's statuses (PENDING, PARTIAL, FILLED) in its words: pending is every working order.
STATUS_ALIASES = {"partial": Order.Status.PARTIALLY_FILLED}
ORDER_LIST_PARAMETERS = [
    OpenApiParameter("status", str, enum=[*Order.Status.values, *LIVE_ALIASES, *STATUS_ALIASES]),
    OpenApiParameter("symbol", str),
]


def _order_request(data) -> services.OrderRequest:
    return services.OrderRequest(**data)


def order_place_response(request, body) -> Response:
    """Check ``body`` as an order, place it for the caller and answer with it: 201, or 200
    for a retry whose ``client_order_id`` was already used. Seed 003's path shares it."""
    data = _order_checker().run_validation(body)
    order, created = services.order_place(user=request.user, request=_order_request(data))
    return Response(
        order_output(order), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
    )


_checkers = threading.local()


def _order_checker() -> OrderPlaceInputSerializer:
    """One order serializer per thread, reused for every order it validates: DRF deep-copies
    a serializer's fields each time one is built, which cost more than placing the order.
    Its ``run_validation`` raises the same ``ValidationError`` as ``is_valid`` would."""
    checker = getattr(_checkers, "order", None)
    if checker is None:
        checker = _checkers.order = OrderPlaceInputSerializer()
    return checker


# The order-entry fast path (OrderListCreateApi.dispatch): requests DRF would answer with its
# JSON renderer, authenticated by a bearer token.
_FAST_ACCEPT = frozenset({"", "*/*", "application/json"})
_FAST_AUTH = JWTAuthentication()
_FAST_RENDERER = JSONRenderer()


def _fast_eligible(request, kwargs) -> bool:
    meta = request.META
    return (
        request.method == "POST"
        and settings.ORDER_ENTRY_FAST_PATH
        and request.content_type == "application/json"
        and request.content_params.get("charset", "utf-8").lower() in ("utf-8", "utf8")
        and meta.get("HTTP_AUTHORIZATION", "").startswith("Bearer ")
        and meta.get("HTTP_ACCEPT", "") in _FAST_ACCEPT
        and not meta.get("QUERY_STRING")
        and "format" not in kwargs
    )


@extend_schema_view(
    get=extend_schema(tags=["orders"], operation_id="orders_list", parameters=ORDER_LIST_PARAMETERS)
)
class OrderListCreateApi(ListAPIView):
    """The caller's orders, newest first (``?status=`` incl. ``live``, ``?symbol=``)."""

    serializer_class = OrderOutputSerializer
    queryset = Order.objects.none()  # for the schema; requests use get_queryset
    throttle_classes = [PrivateReadRateThrottle, OrderPlaceRateThrottle, OrderCancelRateThrottle]

    def get_queryset(self):
        orders = selectors.order_list_for_user(user=self.request.user)
        params = self.request.query_params
        if status_filter := params.get("status"):
            if status_filter in LIVE_ALIASES:
                orders = orders.filter(status__in=Order.LIVE)
            elif status_filter in Order.Status.values or status_filter in STATUS_ALIASES:
                orders = orders.filter(status=STATUS_ALIASES.get(status_filter, status_filter))
            else:
                raise ValidationError({"status": [f"Unknown status {status_filter!r}."]})
        if symbol := params.get("symbol"):
            orders = orders.filter(market=selectors.market_get_by_symbol(symbol=symbol))
        return orders

    @extend_schema(
        tags=["orders"],
        operation_id="orders_place",
        request=OrderPlaceInputSerializer,
        # 422: not enough balance, or the market is halted or has no liquidity for it.
        responses={201: OrderOutputSerializer, 200: OrderOutputSerializer, 422: None},
        description="Accepts the order (201) and queues it for the matcher; a retry with a "
        "`client_order_id` already used returns the first order (200).",
    )
    def post(self, request):
        return order_place_response(request, request.data)

    def dispatch(self, request, *args, **kwargs):
        if _fast_eligible(request, kwargs):
            response = self._post_fast(request, args, kwargs)
            if response is not None:
                return response
        return super().dispatch(request, *args, **kwargs)

    def _post_fast(self, request, args, kwargs) -> Response | None:
        """``post`` for a JSON order with a bearer token, without DRF's per-request setup
        (negotiation, three authenticators and throttles, permission classes, lazy parsing).

        The same checks in an order that changes nothing it answers: the same JWT and
        session checks, the same parser and serializer, then the same ``orders`` throttle
        (its key and rate). Anything refused before the order is counted by the throttle (no
        token, a bad or revoked one, bad JSON, a bad order, a throttled caller) returns None,
        and the full DRF view answers it with its usual response: a request is counted once.
        After the throttle the order goes to the same service, and its refusals and the 201
        go through DRF's own ``handle_exception`` and ``finalize_response``. Returns None to
        fall back."""
        try:
            authenticated = _FAST_AUTH.authenticate(request)
            if authenticated is None:
                return None
            body = json.loads(
                request.body.decode("utf-8"), parse_float=Decimal, parse_constant=refuse_constant
            )
            data = _order_checker().run_validation(body)
        except Exception:  # the full view answers it, with its error shape
            return None
        user, token = authenticated
        drf_request = Request(request, parsers=(), authenticators=())
        drf_request.user, drf_request.auth = user, token  # also on the Django request
        drf_request._authenticator = _FAST_AUTH
        drf_request._full_data = drf_request._data = body
        drf_request._files = MultiValueDict()
        drf_request.accepted_renderer = _FAST_RENDERER
        drf_request.accepted_media_type = _FAST_RENDERER.media_type
        drf_request.version = drf_request.versioning_scheme = None
        throttle = OrderPlaceRateThrottle()
        if not throttle.allow_request(drf_request, self):
            return None  # refused without counting it: the full view refuses it again
        self.args, self.kwargs, self.request = args, kwargs, drf_request
        self.headers = self.default_response_headers
        self.format_kwarg = None
        try:
            order, created = services.order_place(user=user, request=_order_request(data))
            response = Response(
                order_output(order),
                status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            )
        except Exception as exc:  # DRF's own handler, as its dispatch does
            response = self.handle_exception(exc)
        self.response = self.finalize_response(drf_request, response, *args, **kwargs)
        return self.response

    @extend_schema(
        tags=["orders"],
        operation_id="orders_cancel_all",
        parameters=[OpenApiParameter("symbol", str)],
        responses={
            202: inline_serializer(
                "OrderCancelAllOutput",
                {"cancelling": serializers.ListField(child=serializers.IntegerField())},
            ),
            404: None,
        },
        description="Queue a cancel of every live order (of one market with `?symbol=`).",
    )
    def delete(self, request):
        order_ids = services.order_cancel_all(
            user=request.user, symbol=request.query_params.get("symbol") or None
        )
        return Response({"cancelling": order_ids}, status=status.HTTP_202_ACCEPTED)


class OrderDetailApi(APIView):
    throttle_classes = [PrivateReadRateThrottle, OrderCancelRateThrottle]

    @extend_schema(tags=["orders"], operation_id="orders_get", responses=OrderOutputSerializer)
    def get(self, request, order_id):
        order = selectors.order_get_for_user(user=request.user, order_id=order_id)
        return Response(order_output(order))

    @extend_schema(
        tags=["orders"],
        operation_id="orders_cancel",
        responses={202: OrderOutputSerializer, 409: None},
        description="Queue the cancel; the matcher decides and releases the reserve.",
    )
    def delete(self, request, order_id):
        order = services.order_cancel(user=request.user, order_id=order_id)
        return Response(order_output(order), status=status.HTTP_202_ACCEPTED)


class OrderBatchApi(APIView):
    throttle_classes = [OrderBatchRateThrottle]

    @extend_schema(
        tags=["orders"],
        operation_id="orders_place_batch",
        request=OrderBatchInputSerializer,
        responses={200: None},
        description="Up to 20 orders, each accepted or refused on its own: "
        '`{"results": [{"status": 201, "order": {...}} | {"status": 4xx, "error": {...}}]}`.',
    )
    def post(self, request):
        batch = OrderBatchInputSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        results: list = []
        parsed: list[tuple[int, services.OrderRequest]] = []
        checker = _order_checker()
        for item in batch.validated_data["orders"]:
            try:
                data = checker.run_validation(item)
            except ValidationError as exc:
                results.append(self._error(request, ValidationError(exc.detail)))
            else:
                parsed.append((len(results), _order_request(data)))
                results.append(None)
        if parsed:
            placed = services.order_place_batch(
                user=request.user, requests=[order_request for _, order_request in parsed]
            )
            for (index, _), outcome in zip(parsed, placed, strict=True):
                if isinstance(outcome, ExchangeError):
                    results[index] = self._error(request, outcome)
                else:
                    order, created = outcome
                    results[index] = {
                        "status": 201 if created else 200,
                        "order": order_output(order),
                    }
        return Response({"results": results})

    def _error(self, request, exc) -> dict:
        response = exchange_exception_handler(exc, {"request": request, "view": self})
        return {"status": response.status_code, **response.data}


class OrderAmendApi(APIView):
    throttle_classes = [OrderCancelRateThrottle]

    @extend_schema(
        tags=["orders"],
        operation_id="orders_amend",
        request=OrderAmendInputSerializer,
        responses={202: OrderOutputSerializer, 400: None, 404: None, 409: None, 422: None},
        description="Reduce a live order's quantity to `quantity` (its new total), keeping its "
        "place in the queue (Binance's amend keep-priority). Queued: the order shows the new "
        "quantity once the matcher has run it, and its reserve shrinks with it. An OCO leg's "
        "amend reduces both legs.",
    )
    def post(self, request, order_id):
        body = OrderAmendInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order = services.order_amend(
            user=request.user, order_id=order_id, quantity=body.validated_data["quantity"]
        )
        return Response(order_output(order), status=status.HTTP_202_ACCEPTED)


def _half(result_order, error, request, view) -> dict | None:
    if error is not None:
        response = exchange_exception_handler(error, {"request": request, "view": view})
        return {"status": response.status_code, **response.data}
    if result_order is None:
        return None  # not tried
    return {"status": 200, "order": order_output(result_order)}


class OrderReplaceApi(APIView):
    throttle_classes = [OrderPlaceRateThrottle, OrderCancelRateThrottle]

    @extend_schema(
        tags=["orders"],
        operation_id="orders_cancel_replace",
        request=OrderReplaceInputSerializer,
        responses={
            200: inline_serializer(
                "OrderReplaceOutput",
                {"cancelled": OrderOutputSerializer(), "placed": OrderOutputSerializer()},
            ),
            400: None,
            404: None,
            409: None,
            422: None,
            503: None,
        },
        description="Cancel the order, wait for the matcher to settle the cancel, then place "
        "the new order (its fields as for `POST /orders`; `symbol` defaults to the cancelled "
        "order's). `mode` STOP_ON_FAILURE places only if the cancel succeeded, ALLOW_FAILURE "
        "either way. 200 when both succeed; otherwise the failing half's status with code "
        "CANCEL_REPLACE_FAILED and each half in `details.cancel` / `details.place` "
        '(`{"status", "order"}` or `{"status", "error"}`; `place` null when not tried).',
    )
    def post(self, request, order_id):
        order = selectors.order_get_for_user(user=request.user, order_id=order_id)
        data = OrderReplaceInputSerializer().run_validation(
            {"symbol": order.market.symbol, **request.data}
            if isinstance(request.data, dict)
            else request.data
        )
        mode = data.pop("mode")
        result = services.order_cancel_replace(
            user=request.user, order_id=order_id, request=_order_request(data), mode=mode
        )
        cancel = _half(result.cancelled, result.cancel_error, request, self)
        place = _half(result.placed, result.place_error, request, self)
        if result.cancel_error is None and result.place_error is None:
            return Response({"cancelled": cancel["order"], "placed": place["order"]})
        failed = cancel if result.cancel_error is not None else place
        return Response(
            {
                "error": {
                    "code": "CANCEL_REPLACE_FAILED",
                    "message": "The cancel or the new order failed; see details.",
                    "details": {"cancel": cancel, "place": place},
                }
            },
            status=failed["status"],
        )


@extend_schema_view(
    get=extend_schema(
        tags=["orders"],
        operation_id="oco_list",
        parameters=[OpenApiParameter("symbol", str)],
        description="The caller's OCO lists with their legs, newest first.",
    )
)
class OcoListCreateApi(ListAPIView):
    serializer_class = OrderListOutputSerializer
    queryset = Order.objects.none()  # for the schema; requests use get_queryset
    throttle_classes = [PrivateReadRateThrottle, OrderPlaceRateThrottle]

    def get_queryset(self):
        return selectors.order_lists_for_user(
            user=self.request.user, symbol=self.request.query_params.get("symbol") or None
        )

    @extend_schema(
        tags=["orders"],
        operation_id="oco_place",
        request=OcoPlaceInputSerializer,
        responses={201: OrderListOutputSerializer, 200: OrderListOutputSerializer, 422: None},
        description="One-cancels-the-other: a post-only limit leg and a stop (or stop-limit, "
        "or trailing) leg of the same side and quantity, one reserve for both. When one leg "
        "fills or triggers, the other is cancelled (reason `oco_other_leg`); cancelling "
        "either leg cancels both. A retry with a `list_client_id` already used returns the "
        "first list (200).",
    )
    def post(self, request):
        body = OcoPlaceInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order_list = services.oco_place(
            user=request.user, request=services.OcoRequest(**body.validated_data)
        )
        return Response(
            order_list_output(order_list),
            status=status.HTTP_201_CREATED if order_list.created else status.HTTP_200_OK,
        )


class OcoDetailApi(APIView):
    throttle_classes = [PrivateReadRateThrottle, OrderCancelRateThrottle]

    @extend_schema(tags=["orders"], operation_id="oco_get", responses=OrderListOutputSerializer)
    def get(self, request, list_id):
        order_list = selectors.order_list_get(user=request.user, list_id=list_id)
        return Response(order_list_output(order_list))

    @extend_schema(
        tags=["orders"],
        operation_id="oco_cancel",
        responses={202: OrderListOutputSerializer, 404: None, 409: None, 422: None},
        description="Queue the cancel of the list's live leg(s); the matcher ends both legs.",
    )
    def delete(self, request, list_id):
        order_list = services.order_list_cancel(user=request.user, list_id=list_id)
        return Response(order_list_output(order_list), status=status.HTTP_202_ACCEPTED)


@extend_schema_view(get=extend_schema(tags=["orders"], operation_id="trades_list_mine"))
class MyTradeListApi(ListAPIView):
    """The caller's fills with fees, newest first (``?symbol=``)."""

    serializer_class = TradeOutputSerializer
    queryset = Trade.objects.none()  # for the schema; requests use get_queryset
    throttle_classes = [PrivateReadRateThrottle]

    def get_queryset(self):
        trades = selectors.trade_list_for_user(user=self.request.user)
        if symbol := self.request.query_params.get("symbol"):
            trades = trades.filter(market=selectors.market_get_by_symbol(symbol=symbol))
        return trades
