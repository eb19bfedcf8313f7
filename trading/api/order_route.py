"""``POST /api/v1/orders/`` answered at the WSGI level, before Django's middleware and URL
resolution (``exchange_site/wsgi.py`` wraps the Django application in ``OrderEntryRoute``).

Order entry is the one request bots send hundreds of times a second, and on it the eleven
middleware, the URL resolver and DRF's view machinery cost as much CPU as placing the order
(docs/PERFORMANCE_HISTORY.md, "Order entry beside its yardstick"). This route takes exactly
the requests the view's own fast path takes (JSON, a bearer token, an ``Accept`` DRF answers
with JSON, no query string) and, in addition, no cookies, and runs the same checks in the
same order: the host check, the SSL redirect, the same JWT authentication (the user, its
session and its freeze read on every request), the same parser and serializer, the same
``orders`` throttle, then the same ``order_place`` service. It answers what the middleware
would: the request id (``X-Request-ID``, and in every log line), the security and frame
headers, ``Vary``, ``Allow``, ``Content-Length``, the HTTP metrics and the ``django.request``
log line of a refusal, and it sends Django's ``request_started`` and ``request_finished``
signals (database connection age and health). Everything refused before the throttle
counted the request (no or bad token, frozen user, bad JSON or order, a throttled caller,
a bad host) goes to the full Django application untouched, which answers it as always: one
code path for every error, and a request is counted once. After the throttle, the service's
refusals go through the same DRF exception handler.

Parity is tested request by request (``trading/tests/api/test_order_route.py``). The route
switches itself off when ``settings.MIDDLEWARE`` is not the stack it stands in for, so a new
middleware cannot be skipped silently; ``ORDER_ENTRY_FAST_PATH=0`` switches it off too.
"""

import io
import json
import time
import uuid
from decimal import Decimal

from django.conf import settings
from django.core import signals
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_script_name
from django.http import HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import resolve, set_script_prefix
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_header_parameters
from django.utils.log import log_response
from rest_framework.renderers import JSONRenderer
from rest_framework.settings import api_settings

from exchange_site.db_router import users_pin_to_primary
from exchange_site.metrics import HTTP_LATENCY, HTTP_REQUESTS
from exchange_site.observability import _VALID_REQUEST_ID, request_id_var
from exchange_site.parsers import refuse_constant
from exchange_site.throttling import OrderPlaceRateThrottle
from trading import services
from trading.api.serializers import order_output

# The middleware this route stands in for, in settings order. With any other stack the
# route steps aside: each entry below is answered here (see the module docstring) or does
# nothing for these requests (WhiteNoise: static files; sessions, CSRF, authentication and
# messages: no cookie, so no session, no CSRF cookie and no message; CommonMiddleware: the
# host check and Content-Length, done here, and its redirects, refused below;
# ReadYourWritesMiddleware: the pin of an accepted order's user, done here).
ANSWERED_MIDDLEWARE = (
    "exchange_site.observability.RequestIdMiddleware",
    "exchange_site.observability.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.AuthSessionMiddleware",
    "exchange_site.db_router.ReadYourWritesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)
PATHS = frozenset({"/api/v1/orders/", "/api/v1/orders"})
_ACCEPT = frozenset({"", "*/*", "application/json"})
_RENDERER = JSONRenderer()


def _not_called(request):  # the middleware instances only lend their request/response hooks
    raise AssertionError("not a middleware chain")


def _json_utf8(content_type: str) -> bool:
    media_type, params = parse_header_parameters(content_type)
    return media_type == "application/json" and params.get("charset", "utf-8").lower() in (
        "utf-8",
        "utf8",
    )


class OrderEntryRoute:
    """A WSGI application: order entry's requests (module docstring), else ``app``."""

    def __init__(self, app):
        self.app = app
        self._parts = None

    def _ready(self):
        """What the route needs, built on its first request (settings are final by then)
        and again whenever the settings it depends on have changed (tests)."""
        key = (
            tuple(settings.MIDDLEWARE),
            settings.SECURE_SSL_REDIRECT,
            settings.SECURE_HSTS_SECONDS,
            settings.SECURE_CONTENT_TYPE_NOSNIFF,
            settings.SECURE_REFERRER_POLICY,
            settings.SECURE_CROSS_ORIGIN_OPENER_POLICY,
            settings.X_FRAME_OPTIONS,
            settings.ROOT_URLCONF,
        )
        if self._parts is None or self._parts[0] != key:
            from trading.api.views import OrderListCreateApi

            match = {path: resolve(path) for path in PATHS}
            usable = key[0] == ANSWERED_MIDDLEWARE and all(
                getattr(m.func, "view_class", None) is OrderListCreateApi for m in match.values()
            )
            names = {path: m.view_name for path, m in match.items()}
            view = OrderListCreateApi()
            view.setup(None)  # as in a request: HEAD is GET's
            allow = ", ".join(view.allowed_methods)
            security = SecurityMiddleware(_not_called)
            self._parts = (
                key,
                usable,
                names,
                allow,
                security,
                XFrameOptionsMiddleware(_not_called),
            )
        return self._parts

    def __call__(self, environ, start_response):
        if not (
            environ.get("REQUEST_METHOD") == "POST"
            and environ.get("PATH_INFO") in PATHS
            and not environ.get("QUERY_STRING")
            and not environ.get("HTTP_COOKIE")
            and environ.get("HTTP_AUTHORIZATION", "").startswith("Bearer ")
            and environ.get("HTTP_ACCEPT", "") in _ACCEPT
            and _json_utf8(environ.get("CONTENT_TYPE", ""))
            and settings.ORDER_ENTRY_FAST_PATH
            and not settings.DISALLOWED_USER_AGENTS
            and not settings.PREPEND_WWW
        ):
            return self.app(environ, start_response)
        _key, usable, names, allow, security, xframe = self._ready()
        if not usable:
            return self.app(environ, start_response)
        started = time.perf_counter()
        set_script_prefix(get_script_name(environ))
        signals.request_started.send(sender=WSGIHandler, environ=environ)
        request = WSGIRequest(environ)
        given = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = given if _VALID_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self._answer(request, environ, security, allow)
        finally:
            request_id_var.reset(token)
        if response is None:  # the full application answers it, from the start
            return self.app(environ, start_response)
        xframe.process_response(request, response)
        if not response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        response["X-Request-ID"] = request_id
        response._resource_closers.append(request.close)
        if response.status_code >= 400:
            log_response(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request
            )
        route = names[environ["PATH_INFO"]]
        HTTP_REQUESTS.labels(route, "POST", str(response.status_code)).inc()
        HTTP_LATENCY.labels(route).observe(time.perf_counter() - started)
        response._handler_class = WSGIHandler  # its close() sends request_finished
        start_response(
            f"{response.status_code} {response.reason_phrase}",
            [*response.items()],
        )
        return response

    def _answer(self, request, environ, security, allow) -> HttpResponse | None:
        """The response, or None for the full application (with the body put back)."""
        try:
            request.get_host()  # DisallowedHost: the full path answers 400
            if security.process_request(request) is not None:
                return None  # the SSL redirect
            body = request.body
        except Exception:
            return None
        try:
            outcome = self._place(request, body)
        except Exception as exc:
            outcome = exc
        if outcome is None:
            environ["wsgi.input"] = io.BytesIO(body)
            return None
        if isinstance(outcome, Exception):
            error = api_settings.EXCEPTION_HANDLER(outcome, {"request": request, "view": None})
            if error is None:  # a real bug: logged and answered 500 as everywhere else
                response = response_for_exception(request, outcome)
                patch_vary_headers(response, ("Cookie",))
                return security.process_response(request, response)
            data, status, headers = error.data, error.status_code, error.items()
        else:
            data, status, headers = outcome[0], outcome[1], ()
        response = HttpResponse(_RENDERER.render(data), status=status)
        for name, value in headers:
            if name != "Content-Type":  # DRF's default before rendering
                response[name] = value
        # What DRF's rendering, finalize_response and the session and common middleware add.
        response["Content-Type"] = _RENDERER.media_type
        response["Vary"] = "Accept, Cookie"
        response["Allow"] = allow
        return security.process_response(request, response)

    @staticmethod
    def _place(request, body: bytes):
        """(order data, status) once the order passed the throttle, None for anything
        refused before it; raises what the service raises."""
        from trading.api.views import _FAST_AUTH, _order_checker, _order_request

        try:
            authenticated = _FAST_AUTH.authenticate(request)
            if authenticated is None:
                return None
            data = json.loads(
                body.decode("utf-8"), parse_float=Decimal, parse_constant=refuse_constant
            )
            checked = _order_checker().run_validation(data)
        except Exception:  # the full application answers it, with its error shape
            return None
        request.user, request.auth = authenticated
        if not OrderPlaceRateThrottle().allow_request(request, None):
            return None  # refused without counting it: the full path refuses it again
        order, created = services.order_place(user=request.user, request=_order_request(checked))
        # ReadYourWritesMiddleware's pin of a successful write's user (a no-op without
        # replicas); a refusal above pins nothing, as the middleware skips 4xx and 5xx.
        users_pin_to_primary([request.user.pk])
        return order_output(order), 201 if created else 200
