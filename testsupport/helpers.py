"""Assertions and helpers every app's tests share (imported by their tests/helpers.py)."""

import threading

from django.db import connection

from wallets.ledger_check import ledger_check


def assert_ledger_ok() -> None:
    """ARCHITECTURE §4 invariants 1–5 over the whole database."""
    report = ledger_check()
    assert report.ok, report.violations


def assert_error(response, status: int, code: str) -> dict:
    """The ARCHITECTURE §7 error shape with this status and code; returns the ``error`` object."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], dict)
    return error


def run_concurrently(count: int, work) -> list:
    """Run ``work(i)`` in ``count`` threads released together, each on its own database
    connection; returns each result or the exception it raised."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def worker(i):
        try:
            barrier.wait(timeout=10)
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results
