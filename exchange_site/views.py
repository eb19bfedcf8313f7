"""Site-wide views: the home page, health, and the error pages in the API's error shape."""

from django.http import JsonResponse
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


def server_error(request):
    return _server_error(request)
