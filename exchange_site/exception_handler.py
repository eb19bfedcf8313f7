"""The one place that turns exceptions into the error shape of ARCHITECTURE §7.

``{"error": {"code": "...", "message": "...", "details": {...}}}`` with the right status.
Anything not listed here is a real bug: DRF lets it through, it is logged and becomes a 500
(rendered in the same shape by ``exchange_site.views.server_error``).
"""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from exchange_site.exceptions import ExchangeError

# DRF's own codes, renamed where ours read better.
_CODE_NAMES = {
    "invalid": "VALIDATION_ERROR",
    "parse_error": "MALFORMED_REQUEST",
    "token_not_valid": "TOKEN_INVALID",
}

_MESSAGES = {
    "VALIDATION_ERROR": "The request has invalid fields; see details.",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The error shape, shared with the plain-Django error views."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _message_of(detail: Any) -> str:
    if isinstance(detail, dict):
        detail = detail.get("detail", next(iter(detail.values()), ""))
    if isinstance(detail, list):
        detail = detail[0] if detail else ""
    return str(detail)


def exchange_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF ``EXCEPTION_HANDLER``: every handled error leaves in the one shape."""
    if isinstance(exc, ExchangeError):
        headers = None
        if exc.status == 429 and "retry_after" in exc.details:
            # A lockout raised by a service (a wrong two-factor code) tells when to retry.
            headers = {"Retry-After": str(exc.details["retry_after"])}
        return Response(
            error_body(exc.code, exc.message, exc.details), status=exc.status, headers=headers
        )
    if isinstance(exc, DataError):
        # A value the database cannot hold (a NUL character in a text, say) is bad input;
        # the failed statement wrote nothing and the transaction is rolled back.
        set_rollback()
        return Response(
            error_body("INVALID_INPUT", "The request holds a value that cannot be stored.", {}),
            status=400,
        )
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is unreachable (restarting, failing over): nothing was written (the
        # transaction died with the connection), so the client may simply try again.
        set_rollback()
        return Response(
            error_body("SERVICE_UNAVAILABLE", "The service is briefly unavailable; try again.", {}),
            status=503,
            headers={"Retry-After": "1"},
        )

    if isinstance(exc, DjangoValidationError):
        exc = drf_exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    # DRF's handler sets WWW-Authenticate, Retry-After and rolls back the transaction.
    response = drf_exception_handler(exc, context)
    if response is None:
        return None

    assert isinstance(exc, drf_exceptions.APIException)
    raw_code = exc.default_code
    if isinstance(exc, drf_exceptions.AuthenticationFailed):
        codes = exc.get_codes()
        if isinstance(codes, dict):
            raw_code = codes.get("code", raw_code)
            raw_code = raw_code[0] if isinstance(raw_code, list) else raw_code
    code = _CODE_NAMES.get(raw_code, str(raw_code).upper())

    details: dict[str, Any] = {}
    if isinstance(exc, drf_exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = _MESSAGES["VALIDATION_ERROR"]
        if set(details) == {"non_field_errors"}:
            message = _message_of(details["non_field_errors"])
    else:
        message = _message_of(exc.detail)
        if isinstance(exc, drf_exceptions.Throttled) and exc.wait is not None:
            details = {"retry_after": int(exc.wait + 0.999)}

    response.data = error_body(code, message, details)
    return response
