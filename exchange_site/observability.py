"""Request ids in logs and HTTP metrics: two middlewares and a logging filter.

A request id comes in as ``X-Request-ID`` (from a proxy or the client, when it looks like an
id) or is made here; it lives in a context variable for the request, so every log line the
request writes carries it (``RequestIdFilter``), and it goes back as ``X-Request-ID``. The
order path logs each accepted order's id with it, and the matcher logs the order ids of each
batch, so an order can be followed from the API through the matcher (README, Observability).
"""

import contextvars
import logging
import re
import time
import uuid

from django.conf import settings

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# A forwarded id is kept only when it cannot forge log structure or grow without bound.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def current_request_id() -> str:
    """The id of the request being served in this context, "-" outside one."""
    return request_id_var.get()


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (for the plain and JSON formats)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _VALID_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


def _route(request) -> str:
    """The URL pattern's name (bounded label values), never the raw path."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match.route or "unnamed"
    if request.path.startswith(settings.STATIC_URL):
        return "static"  # answered by WhiteNoise before URL resolution
    return "unmatched"


class MetricsMiddleware:
    """Counts requests by route, method and status and times them by route."""

    def __init__(self, get_response):
        # Imported here, not at the top: the logging configuration loads this module's
        # filter before the apps are ready.
        from exchange_site.metrics import HTTP_LATENCY, HTTP_REQUESTS

        self.get_response = get_response
        self.requests = HTTP_REQUESTS
        self.latency = HTTP_LATENCY

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        route = _route(request)
        method = request.method if request.method in _METHODS else "other"
        self.requests.labels(route, method, str(response.status_code)).inc()
        self.latency.labels(route).observe(time.perf_counter() - started)
        return response
