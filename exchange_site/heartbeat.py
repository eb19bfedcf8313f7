"""Keep a gunicorn worker that is streaming a long response from being killed as hung.

A sync worker tells the arbiter it is alive only between requests, so any response that
takes longer than ``GUNICORN_TIMEOUT`` (30 s) is cut off: the arbiter kills the worker
mid-body. A generator that streams a long download (a statement of a million rows) calls
``heartbeat()`` as it makes progress; a worker that is truly stuck (or writing to a client
that stopped reading) still stops calling it and is killed after the timeout as before.
``gunicorn.conf.py``'s ``post_worker_init`` registers the worker; outside gunicorn (tests,
runserver, Celery) ``heartbeat()`` does nothing.
"""

_worker = None


def worker_register(worker) -> None:
    global _worker
    _worker = worker


def heartbeat() -> None:
    """Tell gunicorn's arbiter this worker is alive (a file time update: one syscall)."""
    if _worker is not None:
        _worker.notify()
