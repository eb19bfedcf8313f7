"""Gunicorn settings for the ``web`` process, from the environment (ARCHITECTURE §1).

Sync workers with persistent database connections measured fastest on this hardware
(shared/notes/http-ws-calibration.md).
"""

import os
from pathlib import Path

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Sync workers, one more than the cores. On the 2-core box a DB-bound DRF view did 655
# requests/s with 2 sync workers, 626 with 3 and 571 as gthread 2x8 (whose p99 also rose
# from 76 to 116 ms): threads only add GIL hand-offs. Order entry waits on PostgreSQL and
# Redis several times per request, and a third worker fills those waits: single orders
# went from 376 to 439 accepted/s and batches from ~2,400 to ~2,900 (docs/PERFORMANCE.md);
# a fourth added nothing.
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
# A sync worker serves one connection at a time; the kernel queues the rest.
backlog = 2048
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 10
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"


# prometheus-client's multiprocess directory, as the settings default it: exported here so
# that the master's child_exit below and every worker agree on it.
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    str(Path(os.environ.get("VAR_DIR", Path(__file__).resolve().parent / "var")) / "prometheus"),
)


def post_worker_init(worker):
    """Long streamed responses (statements) tell the arbiter they progress: heartbeat.py."""
    from exchange_site.heartbeat import worker_register

    worker_register(worker)


def child_exit(server, worker):
    """A worker is gone: drop its live gauges from /metrics (prometheus-client's
    multiprocess mode, https://prometheus.github.io/client_python/multiprocess/)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
