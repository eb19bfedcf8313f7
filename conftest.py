"""Test-wide fixtures. Tests use the machine's real PostgreSQL and Redis (see pyproject env)."""

import os
import socket

import pytest
from django.conf import settings
from django_redis import get_redis_connection
from pytest_django.fixtures import _set_suffix_to_test_databases
from rest_framework.test import APIClient

from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from exchange_site.redis_clients import redis_address
from testsupport.outcome import outcome_failed
from testsupport.stack import LiveStack, seed_markets

START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no'
)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def pytest_configure(config):
    """Fail the whole run at once, loudly, when a service the tests need is down."""
    database = settings.DATABASES["default"]
    host, port = database.get("HOST") or "127.0.0.1", int(database.get("PORT") or 5432)
    if not _answers(host, port):
        pytest.exit(
            f"PostgreSQL is not answering on {host}:{port}. Run the tests with `make test` "
            f"(it starts an embedded one), or start the machine's: {START_POSTGRES}",
            2,
        )
    redis_host = redis_address(settings.REDIS_URL)
    if redis_host is not None and not _answers(*redis_host):
        pytest.exit(
            f"Redis is not answering at {settings.REDIS_URL}. Run the tests with `make test` "
            f"(it starts an embedded one), or start the machine's: {START_REDIS}",
            2,
        )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item (``item.reports["call"]``), so that fixtures can
    tell in their teardown whether the test failed (``testsupport.outcome``)."""
    report = yield
    item.__dict__.setdefault("reports", {})[report.when] = report
    return report


@pytest.fixture(autouse=True)
def _clean_redis():
    """Each test starts with an empty Redis database (throttle counters, cache)."""
    get_redis_connection("default").flushdb()


@pytest.fixture(autouse=True)
def _fast_test_settings(settings):
    # PBKDF2's 1M iterations cost ~0.4 s a hash; tests only need hashing to be correct.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Each test client loads the middleware again, and WhiteNoise's then lists every static
    # file (15 ms, thousands of times a run); looking a file up per request serves the same.
    settings.WHITENOISE_AUTOREFRESH = True


@pytest.fixture
def sent_emails(mailoutbox):
    """The emails sent during the test (``django.core.mail.outbox``, the locmem backend).

    Celery runs tasks inline for the test (eager, errors raised), so an
    ``email_send_on_commit`` lands here as soon as its transaction commits. Under the plain
    ``db`` fixture nothing ever commits: wrap the action in
    ``django_capture_on_commit_callbacks(execute=True)`` (or use ``transactional_db``) for
    the on-commit callbacks to run::

        with django_capture_on_commit_callbacks(execute=True):
            api_client.post("/api/v1/auth/password/reset", {...})
        [message] = sent_emails
    """
    from exchange_site.celery import app

    eager, propagates = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    try:
        yield mailoutbox
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = eager, propagates


# --- Shared API fixtures (every app's tests log users in) ------------------------------


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def password():
    return DEFAULT_PASSWORD


@pytest.fixture
def tokens(api_client, user, password):
    response = api_client.post(
        "/api/v1/auth/login", {"email": user.email, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def auth_client(tokens):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    return client


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """One test database per pytest process (``test_exchange_p<pid>``), so two suites
    running at once on one machine never drop each other's database."""
    _set_suffix_to_test_databases(suffix=f"p{os.getpid()}")


@pytest.fixture
def live_stack(transactional_db, request):
    """The real processes (gunicorn, daphne, run_matcher) on the test database; see
    ``testsupport.stack``. The demo markets exist before the matcher starts."""
    seed_markets()
    stack = LiveStack(name=request.node.name[:60])
    try:
        stack.start()
        yield stack
    finally:
        # A failure in CI leaves only the test's report: put the servers' last words in it
        # (pytest shows a failed test's captured teardown output).
        try:
            if outcome_failed(request):
                print(stack.log_tails())
        finally:
            stack.stop()


@pytest.fixture
async def hub_stopped():
    """Stops the market-data hub at the end of the test, on the test's own event loop, before
    pytest-asyncio cancels whatever is left: its tasks end and its Redis connections close in
    order (a bare cancel of a hub reading from a connection Redis had dropped hung once)."""
    yield
    from marketdata.hub import hub

    await hub.stop()
