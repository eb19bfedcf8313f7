"""Statement downloads from the wallet page (session login): ``/wallet/statements/<kind>.<fmt>``.

The form in ``templates/wallets/_statements.html`` submits to ``statement_form``, which only
redirects to the download URL, so the page needs no script. The REST API's view
(``wallets.api.statement_views``) streams the same response.
"""

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from exchange_site.exception_handler import error_body
from exchange_site.exceptions import ExchangeError
from exchange_site.throttling import ExchangeRateThrottle
from wallets.statements_export import KINDS, StatementExport, statement_export


class StatementRateThrottle(ExchangeRateThrottle):
    """Statements per user (or API key): each can hold a web worker for seconds."""

    scope = "statements"
    audience = "user"


def _throttled(request) -> JsonResponse | None:
    """The page's answer when the user is over the ``statements`` rate (the API view gets the
    same from DRF's throttling), else None."""
    throttle = StatementRateThrottle()
    if throttle.allow_request(request, None):
        return None
    retry_after = int((throttle.wait() or 1) + 0.999)
    response = JsonResponse(
        error_body(
            "THROTTLED",
            f"Request was throttled. Expected available in {retry_after} seconds.",
            {"retry_after": retry_after},
        ),
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response


def statement_response(export: StatementExport) -> StreamingHttpResponse:
    """The export as an attachment, streamed chunk by chunk as its rows are read.

    Under WSGI (gunicorn) each chunk is written to the socket as it is produced. Under ASGI
    Django would first collect a synchronous iterator into memory, so statements are served
    by the WSGI ``web`` process only.
    """
    response = StreamingHttpResponse(export.chunks(), content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    # A private document: no shared or browser cache keeps a copy.
    response["Cache-Control"] = "private, no-store"
    return response


def _error(exc: ExchangeError) -> JsonResponse:
    return JsonResponse(error_body(exc.code, exc.message, exc.details), status=exc.status)


@login_required
@require_GET
def statement_download(request, kind: str, fmt: str):
    throttled = _throttled(request)
    if throttled is not None:
        return throttled
    try:
        export = statement_export(
            user=request.user,
            kind=kind,
            fmt=fmt,
            start=request.GET.get("start"),
            end=request.GET.get("end"),
        )
    except ExchangeError as exc:
        return _error(exc)
    return statement_response(export)


@login_required
@require_GET
def statement_form(request):
    """The wallet page's form: ``?kind=&format=&start=&end=`` → the download URL."""
    kind = request.GET.get("kind", "")
    fmt = request.GET.get("format", "")
    if kind not in KINDS or fmt not in ("csv", "json"):
        # statement_export says which field is wrong, in the error shape.
        try:
            statement_export(user=request.user, kind=kind, fmt=fmt)
        except ExchangeError as exc:
            return _error(exc)
    query = {name: request.GET[name] for name in ("start", "end") if request.GET.get(name)}
    url = reverse("wallet-statement", kwargs={"kind": kind, "fmt": fmt})
    return HttpResponseRedirect(f"{url}?{urlencode(query)}" if query else url)
