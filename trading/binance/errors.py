"""Errors of the Binance-compatible API: ``{"code": int, "msg": str}``, as Binance sends them.

Services raise the exchange's own errors (``exchange_site.exceptions``); this module maps
them to Binance's codes and messages, which is what bots and CCXT key their exception
classes on (``InsufficientFunds`` needs -2010 with Binance's exact message, ``BadSymbol``
-1121, ``OrderNotFound`` -2011/-2013, ``InvalidNonce`` -1021 ...). The handler is set per view
(``BinanceApi.get_exception_handler``), so ``/api/v1``'s error shape never shows here.

Codes: https://developers.binance.com/docs/binance-spot-api-docs/errors
"""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from exchange_site.exceptions import ExchangeError

logger = logging.getLogger("trading.binance")

UNKNOWN = -1000
TIMEOUT = -1007
TOO_MANY_REQUESTS = -1003
TOO_MANY_ORDERS = -1015
INVALID_MESSAGE = -1013
UNSUPPORTED_ORDER_COMBINATION = -1014
INVALID_TIMESTAMP = -1021
INVALID_SIGNATURE = -1022
ILLEGAL_CHARS = -1100
TOO_MANY_PARAMETERS = -1101
MANDATORY_PARAM_EMPTY_OR_MALFORMED = -1102
UNREAD_PARAMETERS = -1104
PARAM_NOT_REQUIRED = -1106
BAD_PRECISION = -1111
INVALID_TIF = -1115
INVALID_ORDER_TYPE = -1116
INVALID_SIDE = -1117
INVALID_INTERVAL = -1120
BAD_SYMBOL = -1121
INVALID_PARAMETER = -1130
INVALID_LISTEN_KEY = -1125
UNSUPPORTED_OPERATION = -1020
BAD_RECV_WINDOW = -1131
INVALID_CANCEL_RESTRICTIONS = -1145
OCO_ORDER_TYPE_REJECTED = -1158
BUY_OCO_LIMIT_MUST_BE_BELOW = -1165
SELL_OCO_LIMIT_MUST_BE_ABOVE = -1166
BOTH_OCO_ORDERS_CANNOT_BE_LIMIT = -1168
BUY_OCO_STOP_LOSS_MUST_BE_ABOVE = -1196
SELL_OCO_STOP_LOSS_MUST_BE_BELOW = -1197
NEW_ORDER_REJECTED = -2010
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
BAD_API_KEY_FMT = -2014
REJECTED_MBX_KEY = -2015
CANCEL_REPLACE_PARTIALLY_FAILED = -2021
CANCEL_REPLACE_FAILED = -2022
SUBSCRIPTION_ACTIVE = -2035
SUBSCRIPTION_INACTIVE = -2036
ORDER_AMEND_REJECTED = -2038

INSUFFICIENT_BALANCE_MSG = "Account has insufficient balance for requested action."
UNKNOWN_ORDER_MSG = "Unknown order sent."
ORDER_DOES_NOT_EXIST_MSG = "Order does not exist."
REJECTED_KEY_MSG = "Invalid API-key, IP, or permissions for action."
UNKNOWN_MSG = "An unknown error occurred while processing the request."
UNSUPPORTED_COMBINATION_MSG = "Unsupported order combination."
ORDER_LIST_DOES_NOT_EXIST_MSG = "Order list does not exist."
NUMBER_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"

# Our order fields by their Binance parameter names.
PARAM_NAMES = {
    "symbol": "symbol",
    "side": "side",
    "order_type": "type",
    "quantity": "quantity",
    "price": "price",
    "stop_price": "stopPrice",
    "quote_quantity": "quoteOrderQty",
    "time_in_force": "timeInForce",
    "post_only": "type",
    "client_order_id": "newClientOrderId",
    "iceberg_quantity": "icebergQty",
    "trailing_delta": "trailingDelta",
}


class BinanceError(Exception):
    """An error in Binance's shape; ``status`` is the HTTP status Binance would use, ``data``
    the extra object a few errors carry (cancel-replace's ``cancelResult`` ...)."""

    def __init__(
        self,
        code: int,
        msg: str,
        *,
        status: int = 400,
        headers: dict | None = None,
        data: dict | None = None,
    ):
        self.code = code
        self.msg = msg
        self.status = status
        self.headers = headers or {}
        self.data = data
        super().__init__(f"{code} {msg}")

    def body(self) -> dict:
        return {"code": self.code, "msg": self.msg}


def illegal_chars(name: str, legal: str = NUMBER_RANGE) -> BinanceError:
    return BinanceError(
        ILLEGAL_CHARS,
        f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.",
    )


def mandatory(name: str) -> BinanceError:
    return BinanceError(
        MANDATORY_PARAM_EMPTY_OR_MALFORMED,
        f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
    )


def not_required(name: str) -> BinanceError:
    return BinanceError(PARAM_NOT_REQUIRED, f"Parameter '{name}' sent when not required.")


def unsupported_combination() -> BinanceError:
    return BinanceError(UNSUPPORTED_ORDER_COMBINATION, UNSUPPORTED_COMBINATION_MSG)


def invalid_symbol() -> BinanceError:
    return BinanceError(BAD_SYMBOL, "Invalid symbol.")


def rejected_key() -> BinanceError:
    return BinanceError(REJECTED_MBX_KEY, REJECTED_KEY_MSG, status=401)


def _field_of(exc: ExchangeError) -> str | None:
    details = exc.details or {}
    field = details.get("field")
    if field is None and details.get("fields"):
        field = details["fields"][0]
    return PARAM_NAMES.get(field, field) if field else None


_FILTER_FAILURES = {
    "INVALID_PRICE_TICK": "PRICE_FILTER",
    "PRICE_TOO_LARGE": "PRICE_FILTER",
    "INVALID_QUANTITY_STEP": "LOT_SIZE",
    "QUANTITY_TOO_SMALL": "LOT_SIZE",
    "QUANTITY_TOO_LARGE": "LOT_SIZE",
    "MIN_NOTIONAL": "NOTIONAL",
    "INVALID_TRAILING_DELTA": "TRAILING_DELTA",
}


def from_exchange_error(exc: ExchangeError, *, operation: str = "") -> BinanceError:
    """The Binance error for one of ours. ``operation`` is ``place``, ``cancel``, ``query``
    or ``amend``: Binance names a missing order -2011 on cancel and -2013 on a query or an
    amend, refuses a new order with -2010 and an amend with -2038."""
    code = exc.code
    if code in ("UNKNOWN_SYMBOL", "UNKNOWN_ASSET"):
        return invalid_symbol()
    if code == "INSUFFICIENT_BALANCE":
        return BinanceError(NEW_ORDER_REJECTED, INSUFFICIENT_BALANCE_MSG)
    if code == "INVALID_OCO_PRICES":
        return BinanceError(
            NEW_ORDER_REJECTED, "The relationship of the prices for the orders is not correct."
        )
    if code == "DUPLICATE_CLIENT_ORDER_ID":
        return BinanceError(NEW_ORDER_REJECTED, "Duplicate order sent.")
    if code == "CANCEL_PENDING":
        return BinanceError(
            TIMEOUT,
            "Timeout waiting for response from backend server. Send status unknown; "
            "execution status unknown.",
            status=503,
        )
    if code in _FILTER_FAILURES:
        return BinanceError(INVALID_MESSAGE, f"Filter failure: {_FILTER_FAILURES[code]}")
    if code == "INVALID_NUMBER":
        field = _field_of(exc)
        if field is None:  # the order's value is beyond what the exchange can hold
            return BinanceError(INVALID_MESSAGE, "Filter failure: NOTIONAL")
        return illegal_chars(field)
    if code == "INVALID_QUOTE_PRECISION":
        return BinanceError(BAD_PRECISION, "Precision is over the maximum defined for this asset.")
    if code == "MISSING_FIELD":
        return mandatory(_field_of(exc) or "quantity")
    if code == "UNEXPECTED_FIELD":
        return not_required(_field_of(exc) or "quoteOrderQty")
    if code == "INVALID_TIME_IN_FORCE":
        return BinanceError(INVALID_TIF, "Invalid timeInForce.")
    if code == "INVALID_SIDE":
        return BinanceError(INVALID_SIDE, "Invalid side.")
    if code in ("INVALID_ORDER_TYPE", "INVALID_POST_ONLY"):
        return BinanceError(INVALID_ORDER_TYPE, "Invalid orderType.")
    if code in ("MARKET_HALTED", "MARKET_CANCEL_ONLY"):
        return BinanceError(INVALID_MESSAGE, "Market is closed.")
    if code == "NO_LIQUIDITY":
        return BinanceError(
            NEW_ORDER_REJECTED,
            "Order book liquidity is less than LOT_SIZE filter minimum quantity.",
        )
    if code in ("ORDER_NOT_FOUND", "ORDER_NOT_CANCELLABLE"):
        if operation in ("query", "amend"):
            return BinanceError(NO_SUCH_ORDER, ORDER_DOES_NOT_EXIST_MSG)
        return BinanceError(CANCEL_REJECTED, UNKNOWN_ORDER_MSG)
    if code == "SIGNATURE_INVALID":
        return BinanceError(INVALID_SIGNATURE, "Signature for this request is not valid.")
    if code.startswith("API_KEY") or code in ("ACCOUNT_FROZEN", "PERMISSION_DENIED"):
        return rejected_key()
    if exc.status == 429:
        return BinanceError(TOO_MANY_REQUESTS, exc.message, status=429)
    if operation == "place" and 400 <= exc.status < 500:
        return BinanceError(NEW_ORDER_REJECTED, exc.message)
    if operation == "cancel" and 400 <= exc.status < 500:
        return BinanceError(CANCEL_REJECTED, exc.message)
    if operation == "amend" and 400 <= exc.status < 500:
        return BinanceError(ORDER_AMEND_REJECTED, exc.message)
    return BinanceError(UNKNOWN, exc.message, status=exc.status if exc.status < 500 else 500)


def _from_drf(exc: drf_exceptions.APIException) -> BinanceError:
    if isinstance(exc, drf_exceptions.Throttled):
        wait = int((exc.wait or 1) + 0.999)
        return BinanceError(
            TOO_MANY_REQUESTS,
            "Too many requests; please use the websocket for live updates to avoid polling "
            "the API.",
            status=429,
            headers={"Retry-After": str(wait)},
        )
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        return BinanceError(BAD_API_KEY_FMT, "API-key format invalid.", status=401)
    if isinstance(exc, drf_exceptions.PermissionDenied):
        return rejected_key()
    if isinstance(exc, drf_exceptions.NotFound):
        return BinanceError(UNKNOWN, "Unknown path.", status=404)
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return BinanceError(UNKNOWN, str(exc.detail), status=405)
    if isinstance(exc, drf_exceptions.ValidationError):
        return BinanceError(ILLEGAL_CHARS, _first_message(exc.detail))
    return BinanceError(ILLEGAL_CHARS, _first_message(exc.detail), status=exc.status_code)


def _first_message(detail: Any) -> str:
    while isinstance(detail, dict | list) and detail:
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    return str(detail) or "Malformed request."


def error_response(error: BinanceError) -> Response:
    body = error.body()
    if error.data is not None:
        body["data"] = error.data
    return Response(body, status=error.status, headers=error.headers)


def binance_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Every error of ``/api/v3`` in Binance's shape, unexpected ones included (logged, 500)."""
    view = context.get("view")
    exc = binance_error(exc, operation=getattr(view, "operation", ""), where=type(view).__name__)
    set_rollback()
    return error_response(exc)


def binance_error(exc: Exception, *, operation: str = "", where: str = "") -> BinanceError:
    """Any exception as the Binance error to answer with (unexpected ones logged, -1000 with
    status 500); the REST handler and the WebSocket API (``trading.binance.ws_api``) share
    it."""
    if isinstance(exc, ExchangeError):
        exc = from_exchange_error(exc, operation=operation)
    elif isinstance(exc, DjangoValidationError):
        exc = BinanceError(ILLEGAL_CHARS, _first_message(exc.messages))
    elif isinstance(exc, DataError):
        # A value the database cannot hold (a NUL character, a number too large): bad
        # input, refused before anything was written.
        exc = BinanceError(ILLEGAL_CHARS, "Illegal characters found in a parameter.")
    elif isinstance(exc, Http404):
        exc = BinanceError(UNKNOWN, "Unknown path.", status=404)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = rejected_key()
    elif isinstance(exc, drf_exceptions.APIException):
        exc = _from_drf(exc)
    elif not isinstance(exc, BinanceError):
        logger.error("unexpected error in %s", where, exc_info=exc)
        exc = BinanceError(UNKNOWN, UNKNOWN_MSG, status=500)
    return exc
