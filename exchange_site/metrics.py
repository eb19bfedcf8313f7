"""Prometheus metrics of every process (prometheus-client in multiprocess mode).

The web process runs several gunicorn workers, and the matcher, the ws process and Celery
are processes of their own: each writes its samples to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` (settings; ``VAR_DIR/prometheus`` by default) and ``/metrics``
on any web worker adds up every file there, the approach prometheus-client documents for
gunicorn (https://prometheus.github.io/client_python/multiprocess/). Whoever starts the
processes empties the directory first (``scripts/run.py`` does).

Metric children for fixed label values are bound once at import: ``.labels()`` costs a
lock and a dict lookup, and some of these sit on the order and fan-out paths.
"""

import ipaddress
import os
import secrets
from functools import lru_cache

from django.conf import settings

# prometheus_client picks its value class (in-process or memory-mapped) when first imported,
# from the environment: settings must have exported the directory before that.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(settings.PROMETHEUS_MULTIPROC_DIR))
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from django.http import HttpResponse, JsonResponse  # noqa: E402
from prometheus_client import (  # noqa: E402
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder  # noqa: E402

from exchange_site.exception_handler import error_body  # noqa: E402

# --- HTTP -------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "exchange_http_requests_total",
    "HTTP requests answered, by URL pattern name, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "exchange_http_request_duration_seconds",
    "Time from the first middleware to the response, by URL pattern name.",
    ["route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# --- Orders (trading.services) ----------------------------------------------------------
ORDERS_ACCEPTED = Counter(
    "exchange_orders_accepted_total",
    "Orders accepted for matching (a repeated client_order_id is not counted again).",
)
ORDERS_REFUSED = Counter(
    "exchange_orders_refused_total",
    "Orders refused at entry, by error code.",
    ["code"],
)


@lru_cache(maxsize=256)
def orders_refused(code: str):
    """The refusal counter of one error code (codes are a small fixed set)."""
    return ORDERS_REFUSED.labels(code=code)


# --- Matcher (trading.matcher.runner) ---------------------------------------------------
MATCHER_BATCH_COMMANDS = Histogram(
    "exchange_matcher_batch_commands",
    "Commands settled per matcher batch (one transaction), by market.",
    ["symbol"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
)
MATCHER_BATCH_SECONDS = Histogram(
    "exchange_matcher_batch_seconds",
    "Time to run and commit one matcher batch, by market.",
    ["symbol"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
# livemostrecent: the value of the matcher that wrote last, forgotten when it exits.
MATCHER_PENDING = Gauge(
    "exchange_matcher_pending_commands",
    "Commands waiting for the matcher, by market.",
    ["symbol"],
    multiprocess_mode="livemostrecent",
)
MATCHER_LAG = Gauge(
    "exchange_matcher_lag_seconds",
    "Age of the oldest command waiting for the matcher, by market (0 when none waits).",
    ["symbol"],
    multiprocess_mode="livemostrecent",
)

# --- WebSockets (marketdata.hub, marketdata.outbox) -------------------------------------
WS_CONNECTIONS = Gauge(
    "exchange_ws_connections",
    "Open streaming WebSocket connections.",
    multiprocess_mode="livesum",
)
WS_MESSAGES_SENT = Counter(
    "exchange_ws_messages_sent_total",
    "WebSocket messages: kind=fanout counts public messages handed to subscribers (once per "
    "fan-out), kind=outbox every message written through a connection's queue (snapshots, "
    "private events, replies, and public messages that had to wait behind them).",
    ["kind"],
)
WS_MESSAGES_DROPPED = Counter(
    "exchange_ws_messages_dropped_total",
    "Messages a slow WebSocket client lost (it is resynced from a fresh snapshot).",
)
WS_SEND_PATH = Counter(
    "exchange_ws_send_path_total",
    "Streaming connections opened, by how public messages are written to them: path=direct "
    "(prepared frames straight to daphne's transport, marketdata.fastsend) or path=asgi.",
    ["path"],
)
ws_path_direct = WS_SEND_PATH.labels(path="direct")
ws_path_asgi = WS_SEND_PATH.labels(path="asgi")
ws_sent_fanout = WS_MESSAGES_SENT.labels(kind="fanout")
ws_sent_outbox = WS_MESSAGES_SENT.labels(kind="outbox")

# --- Celery (exchange_site.celery) ------------------------------------------------------
CELERY_TASKS = Counter(
    "exchange_celery_tasks_total",
    "Celery task outcomes: succeeded, failed, retried, rejected, revoked.",
    ["task", "outcome"],
)


# --- the /metrics endpoint --------------------------------------------------------------


def _client_address(request) -> str:
    """The client address as the throttles see it: behind NUM_PROXIES trusted proxies, the
    X-Forwarded-For entry that many hops deep; otherwise the socket's."""
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",")]
        return hops[-min(proxies, len(hops))]
    return request.META.get("REMOTE_ADDR", "")


def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if given.startswith("Bearer ") and secrets.compare_digest(
            given[7:].strip().encode(), token.encode()
        ):
            return True
    try:
        address = ipaddress.ip_address(_client_address(request))
    except ValueError:
        return False
    return any(address in network for network in _allowed_networks())


@lru_cache(maxsize=1)
def _allowed_networks_for(allowed: tuple[str, ...]) -> list:
    return [ipaddress.ip_network(item, strict=False) for item in allowed]


def _allowed_networks() -> list:
    return _allowed_networks_for(tuple(settings.METRICS_ALLOWED_IPS))


def metrics_view(request):
    """Every process's metrics in Prometheus text format, for allowed addresses or the
    bearer token (METRICS_ALLOWED_IPS, METRICS_TOKEN); anyone else gets a 403."""
    if not _allowed(request):
        return JsonResponse(
            error_body("PERMISSION_DENIED", "Metrics are not available to this client."),
            status=403,
        )
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    # The format the scraper asks for (OpenMetrics or text), the classic text by default.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = HttpResponse(encode(registry), content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response


def process_exited(pid: int) -> None:
    """Forget the live gauges of a process that is gone (gunicorn's child_exit, the
    matcher's exit)."""
    multiprocess.mark_process_dead(pid)
