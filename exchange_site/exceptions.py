"""Domain errors. Services raise these; one handler renders them (ARCHITECTURE §7)."""

from typing import Any


class ExchangeError(Exception):
    """Base of every domain error: a stable ``code``, a human ``message``, an HTTP ``status``.

    Subclasses fix ``code`` and ``status``; callers add ``details`` (plain JSON data).
    """

    code = "EXCHANGE_ERROR"
    status = 400
    message = "The request could not be completed."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or self.message
        self.details = details or {}
        super().__init__(self.message)


class NotFoundError(ExchangeError):
    code = "NOT_FOUND"
    status = 404
    message = "Not found."


class ConflictError(ExchangeError):
    code = "CONFLICT"
    status = 409
    message = "The request conflicts with the current state."


class BusinessRuleError(ExchangeError):
    code = "BUSINESS_RULE"
    status = 422
    message = "The request breaks a business rule."


class ServiceUnavailableError(ExchangeError):
    code = "SERVICE_UNAVAILABLE"
    status = 503
    message = "A service the exchange depends on is unavailable."
