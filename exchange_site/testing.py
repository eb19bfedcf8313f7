"""Assertions every app's tests share (imported by their tests/helpers.py)."""

from wallets.ledger_check import ledger_check


def assert_ledger_ok() -> None:
    """DESIGN §4 invariants 1–5 over the whole database."""
    report = ledger_check()
    assert report.ok, report.violations


def assert_error(response, status: int, code: str) -> dict:
    """The DESIGN §7 error shape with this status and code; returns the ``error`` object."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], dict)
    return error
