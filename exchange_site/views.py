"""Site-wide views: the home page, health, and the error pages in the API's error shape."""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange_site.exception_handler import error_body
from exchange_site.health import health_report
from marketdata.selectors import market_list, ticker_list


def home(request):
    """The markets table; live updates come from the ticker streams (static/js/home.js)."""
    markets = market_list()
    tickers = {ticker["symbol"]: ticker for ticker in ticker_list(markets=markets)}
    rows = [{"market": market, "ticker": tickers.get(market.symbol, {})} for market in markets]
    return render(request, "home.html", {"rows": rows})


class HealthApi(APIView):
    """Liveness and readiness: 200 when the database and Redis answer, otherwise 503."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(
        tags=["health"],
        operation_id="health",
        responses={
            (200, "application/json"): inline_serializer(
                "HealthOutput",
                {
                    "status": serializers.ChoiceField(["healthy", "degraded"]),
                    "database": serializers.DictField(),
                    "redis": serializers.DictField(),
                    "matcher": serializers.DictField(),
                },
            )
        },
    )
    def get(self, request):
        report, serving = health_report()
        return Response(report, status=200 if serving else 503)


@extend_schema_view(get=extend_schema(exclude=True))
class HealthAliasApi(HealthApi):
    """``/health`` for load balancers; documented once, under ``/api/v1/health``."""


class ApiIndexApi(APIView):
    """``/api/v1``: where the API's parts are (seed 004's document gives only this base URL)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["health"],
        operation_id="api_index",
        responses={200: inline_serializer("ApiIndexOutput", {"docs": serializers.CharField()})},
    )
    def get(self, request):
        return Response(
            {
                "docs": "/api/docs/",
                "redoc": "/api/redoc/",
                "schema": "/api/schema/",
                "health": "/api/v1/health",
                "markets": "/api/v1/markets",
                "auth": "/api/v1/auth/login",
                "orders": "/api/v1/orders/",
                "websocket": "/ws/",
                "binance": "/api/v3/",
            }
        )


health = never_cache(HealthApi.as_view())
health_alias = never_cache(HealthAliasApi.as_view())


def _wants_json(request) -> bool:
    accept = request.headers.get("Accept", "")
    return request.path.startswith("/api/") or (
        "application/json" in accept and "text/html" not in accept
    )


def _error_view(status: int, code: str, message: str, template: str):
    def view(request, exception=None):
        if _wants_json(request):
            return JsonResponse(error_body(code, message), status=status)
        return render(request, template, {"status": status, "message": message}, status=status)

    view.__name__ = f"error_{status}"
    return view


bad_request = _error_view(400, "BAD_REQUEST", "The request could not be understood.", "error.html")
permission_denied = _error_view(403, "PERMISSION_DENIED", "You may not do that.", "error.html")
page_not_found = _error_view(404, "NOT_FOUND", "Not found.", "error.html")
_server_error = _error_view(
    500, "INTERNAL_ERROR", "Something went wrong on our side.", "error.html"
)


_UNAVAILABLE_MESSAGE = "The service is briefly unavailable; try again."
# No template: base.html reads the session user, which needs the database that is gone.
_UNAVAILABLE_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>503 · Exchange</title>"
    f"<h1>503</h1><p>{_UNAVAILABLE_MESSAGE}</p><p><a href=/>Back to the markets</a></p></html>"
)


def server_error(request):
    # Django calls this inside its ``except`` block, so the exception is still at hand: a
    # lost database is an outage to wait out (503), not a bug (500).
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        if _wants_json(request):
            response = JsonResponse(
                error_body("SERVICE_UNAVAILABLE", _UNAVAILABLE_MESSAGE), status=503
            )
        else:
            response = HttpResponse(_UNAVAILABLE_PAGE, status=503)
        response["Retry-After"] = "1"
        return response
    return _server_error(request)
