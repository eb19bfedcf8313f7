"""``/api/v3``'s order lists (OCO), cancel-replace and amend, over ``services.oco_place``,
``order_cancel_replace`` and ``order_amend``. Thin like ``views``: parse
(``order_params``), call the service, wait for the matcher where Binance answers after
matching, answer in Binance's shapes (``formatters``)."""

from django.conf import settings
from django.db import transaction
from rest_framework.response import Response

from exchange_site.exceptions import ExchangeError
from marketdata.selectors import millis
from trading import services
from trading.binance import errors, formatters, order_params
from trading.binance import selectors as binance_selectors
from trading.binance.auth import BinanceOrderThrottle, now_ms
from trading.binance.errors import BinanceError
from trading.binance.params import Params
from trading.binance.views import LIST_MAX_LIMIT, SignedApi, _order_answer, _schema
from trading.models import Order, OrderCommand, OrderList

# Why the engine refused an OCO, in Binance's words (its -2010 messages).
_OCO_REJECTIONS = {
    "post_only_would_take": "Order would immediately match and take.",
    "oco_stop_would_trigger": "Order would trigger immediately.",
}
_CANCEL_REPLACE_FAILED = "Order cancel-replace failed."
_CANCEL_REPLACE_PARTIALLY_FAILED = "Order cancel-replace partially failed."


# --- OCO ----------------------------------------------------------------------------------


class OcoApi(SignedApi):
    """``POST /orderList/oco``: a LIMIT_MAKER and a STOP_LOSS(_LIMIT) leg, one cancelling the
    other (``services.oco_place``)."""

    trade_methods = ("POST",)
    throttle_classes = [BinanceOrderThrottle]
    parse = staticmethod(order_params.oco_request)

    @_schema("binance_order_list_oco")
    def post(self, request):
        self.operation = "place"
        params = self.params(request)
        market = self.market(params)
        oco_request, response_type = self.parse(params, market)
        order_list = services.oco_place(user=request.user, request=oco_request)
        if response_type == "ACK":
            legs = binance_selectors.order_list_legs(order_lists=[order_list])[order_list.pk]
        else:
            order_list, legs = binance_selectors.order_list_wait_settled(order_list=order_list)
            if order_list.status == OrderList.Status.REJECTED:
                reason = next((leg.reason for leg in legs if leg.reason), "")
                raise BinanceError(
                    errors.NEW_ORDER_REJECTED,
                    _OCO_REJECTIONS.get(reason, f"Order list rejected: {reason or 'unknown'}."),
                )
        return Response(formatters.order_list_placed(order_list, legs, response_type))


class LegacyOcoApi(OcoApi):
    """The deprecated ``POST /order/oco`` (``price``, ``stopPrice``, ``stopLimitPrice`` ...)."""

    parse = staticmethod(order_params.legacy_oco_request)

    @_schema("binance_order_oco")
    def post(self, request):
        return super().post(request)


def _list_lookup(params: Params, request, *, client_name: str, market=None) -> OrderList | None:
    list_id = params.integer("orderListId")
    client_list_id = params.text(client_name)
    if list_id is None and client_list_id is None:
        raise BinanceError(
            errors.MANDATORY_PARAM_EMPTY_OR_MALFORMED,
            f"Param '{client_name}' or 'orderListId' must be sent, but both were empty/null!",
        )
    return binance_selectors.order_list_find_for_user(
        user=request.user, list_id=list_id, client_list_id=client_list_id, market=market
    )


class OrderListApi(SignedApi):
    """``GET /orderList`` (``orderListId`` or ``origClientOrderId``) and ``DELETE /orderList``
    (``symbol`` and ``orderListId`` or ``listClientOrderId``): cancelling one leg ends both."""

    trade_methods = ("DELETE",)

    def request_weight(self, request) -> int:
        return 4 if request.method == "GET" else 1

    @_schema("binance_order_list_get")
    def get(self, request):
        self.operation = "query"
        params = self.params(request)
        params.unread(order_params.SIGNED_PARAMS | {"orderListId", "origClientOrderId"})
        order_list = _list_lookup(params, request, client_name="origClientOrderId")
        if order_list is None:
            raise BinanceError(errors.NO_SUCH_ORDER, errors.ORDER_LIST_DOES_NOT_EXIST_MSG)
        legs = binance_selectors.order_list_legs(order_lists=[order_list])[order_list.pk]
        return Response(formatters.order_list_status(order_list, legs))

    @_schema("binance_order_list_cancel")
    def delete(self, request):
        self.operation = "cancel"
        params = self.params(request)
        market = self.market(params)
        order_list = _list_lookup(params, request, client_name="listClientOrderId", market=market)
        cancel_id = order_params.client_id(params, "newClientOrderId")
        live = None
        if order_list is not None:
            legs = binance_selectors.order_list_legs(order_lists=[order_list])[order_list.pk]
            live = next((leg for leg in legs if leg.is_live), None)
        if live is None:
            raise BinanceError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_MSG)
        services.order_cancel(user=request.user, order_id=live.pk)
        order_list, legs = binance_selectors.order_list_wait_settled(
            order_list=order_list, kind=OrderCommand.Kind.CANCEL
        )
        if not any(leg.is_live or leg.status == Order.Status.CANCELLED for leg in legs):
            # A leg filled before the cancel reached the book: nothing was cancelled.
            raise BinanceError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_MSG)
        return Response(formatters.order_list_canceled(order_list, legs, cancel_id))


class AllOrderListApi(SignedApi):
    weight = 20
    open_only = False

    @_schema("binance_all_order_list")
    def get(self, request):
        params = self.params(request)
        if self.open_only:
            params.unread(order_params.SIGNED_PARAMS)
            lists = binance_selectors.order_lists_range(user=request.user, open_only=True)
        else:
            params.unread(order_params.SIGNED_PARAMS | {"fromId", "startTime", "endTime", "limit"})
            lists = binance_selectors.order_lists_range(
                user=request.user,
                from_id=params.integer("fromId"),
                start=params.millis("startTime"),
                end=params.millis("endTime"),
                limit=params.integer("limit", default=500, low=1, high=LIST_MAX_LIMIT),
            )
        legs = binance_selectors.order_list_legs(order_lists=lists)
        return Response(
            [formatters.order_list_status(order_list, legs[order_list.pk]) for order_list in lists]
        )


class OpenOrderListApi(AllOrderListApi):
    weight = 6
    open_only = True

    @_schema("binance_open_order_list")
    def get(self, request):
        return super().get(request)


# --- cancel-replace -----------------------------------------------------------------------


def _failure(error: BinanceError) -> dict:
    return error.body()


def _check_new_order(user, request: services.OrderRequest) -> None:
    """Binance checks the new order before it cancels anything: ``order_place``'s checks, in a
    transaction rolled back at once (as ``order/test``). A short balance is left to the real
    placement, after the cancel that may free what the new order needs."""
    try:
        with transaction.atomic():
            services.order_place(user=user, request=request)
            transaction.set_rollback(True)
    except ExchangeError as exc:
        if exc.code != "INSUFFICIENT_BALANCE":
            raise


class CancelReplaceApi(SignedApi):
    """``POST /order/cancelReplace``: cancel an order, then place a new one on the same
    symbol (``services.order_cancel_replace``); with STOP_ON_FAILURE only if the cancel
    succeeded. The new order's parameters are checked before anything is cancelled."""

    trade_methods = ("POST",)
    throttle_classes = [BinanceOrderThrottle]

    @_schema("binance_order_cancel_replace")
    def post(self, request):
        self.operation = "place"
        params = self.params(request)
        market = self.market(params)
        spec = order_params.cancel_replace_request(params, market)
        _check_new_order(request.user, spec.request)
        old = binance_selectors.order_find_for_user(
            user=request.user,
            market=market,
            order_id=spec.cancel_order_id,
            client_order_id=spec.cancel_client_order_id,
        )
        cancel_error = None
        if old is None or not old.is_live:
            cancel_error = BinanceError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_MSG)
        else:
            cancel_error = order_params.cancel_restriction_error(old, spec.restrictions)
        cancelled = placed = place_error = None
        if cancel_error is None:
            result = services.order_cancel_replace(
                user=request.user,
                order_id=old.pk,
                request=spec.request,
                mode=spec.mode,
                wait_seconds=settings.BINANCE_ORDER_WAIT_MS / 1000,
            )
            cancelled, placed = result.cancelled, result.placed
            if result.cancel_error is not None:
                cancel_error = errors.from_exchange_error(result.cancel_error, operation="cancel")
            elif cancelled is None or cancelled.status != Order.Status.CANCELLED:
                cancel_error = BinanceError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_MSG)
            if result.place_error is not None:
                place_error = errors.from_exchange_error(result.place_error, operation="place")
        elif spec.mode == "ALLOW_FAILURE":
            try:
                placed, _created = services.order_place(user=request.user, request=spec.request)
            except ExchangeError as exc:
                place_error = errors.from_exchange_error(exc, operation="place")
        new_answer = None
        if placed is not None:
            if spec.response_type != "ACK":
                placed = binance_selectors.orders_wait_settled(
                    order_ids=[placed.pk], kind=OrderCommand.Kind.PLACE
                )[0]
            new_answer = _order_answer(placed, spec.response_type)
        cancel_answer = (
            _failure(cancel_error)
            if cancel_error is not None
            else formatters.order_canceled(cancelled, spec.cancel_new_client_order_id)
        )
        body = {
            "cancelResult": "FAILURE" if cancel_error is not None else "SUCCESS",
            "newOrderResult": (
                "SUCCESS"
                if new_answer is not None
                else "FAILURE"
                if place_error is not None
                else "NOT_ATTEMPTED"
            ),
            "cancelResponse": cancel_answer,
            "newOrderResponse": (
                new_answer
                if new_answer is not None
                else _failure(place_error)
                if place_error
                else None
            ),
        }
        if cancel_error is None and new_answer is not None:
            return Response(body)
        if new_answer is not None or (cancel_error is None and place_error is not None):
            raise BinanceError(
                errors.CANCEL_REPLACE_PARTIALLY_FAILED,
                _CANCEL_REPLACE_PARTIALLY_FAILED,
                status=409,
                data=body,
            )
        raise BinanceError(errors.CANCEL_REPLACE_FAILED, _CANCEL_REPLACE_FAILED, data=body)


# --- amend ----------------------------------------------------------------------------------

AMEND_PARAMS = order_params.SIGNED_PARAMS | {
    "symbol",
    "orderId",
    "origClientOrderId",
    "newClientOrderId",
    "newQty",
}


class AmendKeepPriorityApi(SignedApi):
    """``PUT /order/amend/keepPriority``: reduce an open order's quantity keeping its place
    in the queue (``services.order_amend``); the client order id stays the order's."""

    trade_methods = ("PUT",)
    weight = 4

    @_schema("binance_order_amend")
    def put(self, request):
        self.operation = "amend"
        params = self.params(request)
        params.unread(AMEND_PARAMS)
        market = self.market(params)
        new_qty = params.decimal("newQty")
        if new_qty is None:
            raise errors.mandatory("newQty")
        order_id = params.integer("orderId")
        client_order_id = params.text("origClientOrderId")
        if order_id is None and client_order_id is None:
            raise BinanceError(
                errors.MANDATORY_PARAM_EMPTY_OR_MALFORMED,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        order = binance_selectors.order_find_for_user(
            user=request.user, market=market, order_id=order_id, client_order_id=client_order_id
        )
        if order is None or not order.is_live:
            raise BinanceError(errors.NO_SUCH_ORDER, errors.ORDER_DOES_NOT_EXIST_MSG)
        new_client_id = params.text("newClientOrderId")
        if new_client_id is not None and new_client_id != order.client_order_id:
            # The order keeps its client id here (Binance would rename it).
            raise BinanceError(
                errors.INVALID_PARAMETER,
                "Data sent for parameter 'newClientOrderId' is not valid: an amended order "
                "keeps its clientOrderId here.",
            )
        if order.quantity is not None and new_qty == order.quantity:
            raise BinanceError(
                errors.ORDER_AMEND_REJECTED,
                "The requested action would change no state; rejecting",
            )
        if order.quantity is not None and new_qty > order.quantity:
            raise BinanceError(
                errors.ORDER_AMEND_REJECTED, "Order amend (quantity increase) is not supported."
            )
        services.order_amend(user=request.user, order_id=order.pk, quantity=new_qty)
        (order,) = binance_selectors.orders_wait_settled(
            order_ids=[order.pk], kind=OrderCommand.Kind.AMEND
        )
        command = (
            OrderCommand.objects.filter(order=order, kind=OrderCommand.Kind.AMEND)
            .order_by("-id")
            .first()
        )
        if command.processed_at is not None and order.quantity != new_qty and order.is_live:
            raise BinanceError(errors.ORDER_AMEND_REJECTED, "The order could not be amended.")
        body = {
            "transactTime": millis(command.processed_at) if command.processed_at else now_ms(),
            "executionId": command.pk,
            "amendedOrder": formatters.amended_order(order, order.client_order_id or ""),
        }
        if order.order_list_id is not None:
            order_list = binance_selectors.order_list_find_for_user(
                user=request.user, list_id=order.order_list_id, client_list_id=None
            )
            legs = binance_selectors.order_list_legs(order_lists=[order_list])[order_list.pk]
            body["listStatus"] = formatters.order_list_status(
                order_list, legs, with_status_type=False
            )
        return Response(body)
