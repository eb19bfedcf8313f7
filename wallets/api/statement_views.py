"""``GET /api/v1/wallets/statements/<kind>``: the caller's statement as a streamed CSV or JSON
file (``wallets.statements_export``)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from exchange_site.throttling import PrivateReadRateThrottle
from wallets.statement_views import StatementRateThrottle, statement_response
from wallets.statements_export import DEFAULT_DAYS, FORMATS, KINDS, MAX_DAYS, statement_export


class JsonErrorsNegotiation(BaseContentNegotiation):
    """Always the one (JSON) renderer, for errors: the body of a success is the statement.

    DRF reads ``?format=`` as its renderer override (``URL_FORMAT_OVERRIDE``) and would
    answer ``?format=csv`` with 404, there being no ``csv`` renderer; here ``format`` names
    the statement's file type instead, and is read by the view.
    """

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


_BODY_HELP = (
    "The statement, an attachment: CSV with a header row, or JSON "
    '`{"kind", "start", "end", "columns": [...], "rows": [{column: value}]}`.'
)
_DATE_HELP = "A date (`2026-11-01`, midnight UTC) or an ISO-8601 datetime (UTC unless offset)."


class StatementExportApi(APIView):
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonErrorsNegotiation
    throttle_classes = [PrivateReadRateThrottle, StatementRateThrottle]

    @extend_schema(
        tags=["wallets"],
        operation_id="wallets_statement",
        parameters=[
            OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=list(KINDS)),
            OpenApiParameter(
                "start",
                str,
                description=f"Inclusive. {_DATE_HELP} Default: {DEFAULT_DAYS} days before end.",
            ),
            OpenApiParameter(
                "end",
                str,
                description=f"Exclusive. {_DATE_HELP} Default: the end of today (UTC). "
                f"At most {MAX_DAYS} days after start.",
            ),
            OpenApiParameter("format", str, enum=list(FORMATS), default="csv"),
        ],
        responses={
            # One description per status in OpenAPI: the two media types share it.
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description=_BODY_HELP),
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT),
            400: None,
        },
        description="The caller's own ledger entries, trades, orders, deposits or withdrawals "
        "created in [start, end), oldest first, as a download streamed while it is read "
        "(any number of rows). Decimals are exact strings, times ISO-8601 UTC.",
    )
    def get(self, request, kind):
        export = statement_export(
            user=request.user,
            kind=kind,
            fmt=request.query_params.get("format", "csv"),
            start=request.query_params.get("start"),
            end=request.query_params.get("end"),
        )
        return statement_response(export)
