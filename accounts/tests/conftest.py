import pytest


@pytest.fixture
def login_limits(settings):
    """The login lockout without its slow-down, no request throttles, and the emailing
    limits at their defaults (tests that reason about them lower them)."""
    settings.LOGIN_LOCKOUT_FAILURES = 5
    settings.LOGIN_LOCKOUT_IP_FAILURES = 20
    settings.LOGIN_LOCKOUT_SECONDS = 900
    settings.LOGIN_SLOWDOWN_SECONDS = 0
    settings.THROTTLING = False
    settings.ACCOUNT_EMAILS_PER_ADDRESS = 5
    settings.ACCOUNT_EMAIL_REQUESTS_PER_IP = 20
    return settings


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed(): ...`` runs the on-commit callbacks (the emails) of what it wraps,
    as the commit of a real request would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
