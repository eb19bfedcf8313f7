"""Email: templates, the real SMTP path into the mail catcher, sending after commit through a
real Celery worker, and the demo's /dev/mailbox/ page."""

import email
import email.policy
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template import TemplateDoesNotExist
from django.test import Client
from django.utils.html import escape

from exchange_site.celery import app as celery_app
from exchange_site.mail import (
    email_render,
    email_send_now,
    email_send_on_commit,
    email_send_task,
    site_url,
)
from exchange_site.mailcatcher import (
    MailCatcher,
    MailCatcherError,
    mailbox_message_list,
    maildir_open,
)

ROOT = Path(__file__).resolve().parents[2]
SITE = "http://exchange.test:8000"
RESET_LINE = f"If this wasn't you, reset your password at {SITE}/accounts/password/reset/"

# Every template with the context its callers give; the URL each must carry, if any; and
# whether it is a security notice (ends with the reset-your-password line).
TEMPLATES = {
    "verify_email": (
        {
            "username": "zoë",
            "verify_url": f"{SITE}/accounts/verify/?t=abc&u=1",
            "expires_hours": 24,
        },
        "verify_url",
        False,
    ),
    "password_reset": (
        {"username": "zoë", "reset_url": f"{SITE}/accounts/reset/?t=abc&u=1", "expires_hours": 1},
        "reset_url",
        False,
    ),
    "password_changed": (
        {
            "username": "zoë",
            "when": "2026-03-01 10:00 UTC",
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 <Firefox>",
            "via": "reset",
        },
        None,
        True,
    ),
    "email_change_confirm": (
        {
            "username": "zoë",
            "new_email": "new@example.org",
            "confirm_url": f"{SITE}/accounts/email/confirm/?t=abc&u=1",
            "expires_hours": 48,
        },
        "confirm_url",
        False,
    ),
    "email_change_notice": (
        {
            "username": "zoë",
            "new_email": "new@example.org",
            "when": "2026-03-01 10:00 UTC",
            "ip": "203.0.113.7",
        },
        None,
        True,
    ),
    "email_changed": (
        {"username": "zoë", "new_email": "new@example.org", "when": "2026-03-01 10:00 UTC"},
        None,
        False,  # a reset link would go to the new address: this one says "contact support"
    ),
    "new_device_login": (
        {
            "username": "zoë",
            "when": "2026-03-01 10:00 UTC",
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 <Firefox>",
            "device": "Firefox on Linux",
            "sessions_url": f"{SITE}/accounts/sessions/",
        },
        "sessions_url",
        True,
    ),
    "two_factor_changed": (
        {"username": "zoë", "enabled": False, "when": "2026-03-01 10:00 UTC", "ip": "203.0.113.7"},
        None,
        True,
    ),
    "api_key_created": (
        {
            "username": "zoë",
            "label": "my bot",
            "key_prefix": "xk_4f2a",
            "permissions": "read, trade",
            "when": "2026-03-01 10:00 UTC",
            "ip": "203.0.113.7",
        },
        None,
        True,
    ),
    "withdrawal_requested": (
        {
            "username": "zoë",
            "asset": "BTC",
            "amount": "0.5",
            "fee": "0.0001",
            "address": "bc1qdestination",
            "withdrawal_id": "42",
            "when": "2026-03-01 10:00 UTC",
            "expires": "2026-03-01 10:30 UTC",
            "confirm_minutes": 30,
            "ip": "203.0.113.7",
            "confirm_url": f"{SITE}/wallet/withdrawals/confirm/abc:def/",
            "cancel_url": f"{SITE}/wallet/withdrawals/cancel/abc:ghi/",
            "withdrawals_url": f"{SITE}/wallet/#withdrawals",
        },
        "confirm_url",
        True,
    ),
    "withdrawal_address_added": (
        {
            "username": "zoë",
            "asset": "BTC",
            "address": "bc1qdestination",
            "label": "cold wallet",
            "when": "2026-03-01 10:00 UTC",
            "usable_from": "2026-03-02 10:00 UTC",
            "ip": "203.0.113.7",
            "wallet_url": f"{SITE}/wallet/",
        },
        "wallet_url",
        True,
    ),
    "withdrawal_allowlist_changed": (
        {
            "username": "zoë",
            "enabled": False,
            "when": "2026-03-01 10:00 UTC",
            "ip": "203.0.113.7",
            "wallet_url": f"{SITE}/wallet/",
        },
        "wallet_url",
        True,
    ),
    "withdrawal_status": (
        {
            "username": "zoë",
            "withdrawal_id": 12,
            "asset": "BTC",
            "amount": "0.25000000",
            "address": "bc1qdestination",
            "outcome": "was rejected",
            "tx_id": "",
            "reason": "the address belongs to a sanctioned service",
            "released": True,
            "withdrawals_url": f"{SITE}/wallet/",
        },
        "withdrawals_url",
        True,
    ),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _read_maildir(directory: Path) -> list[email.message.EmailMessage]:
    """The stored messages, parsed independently of exchange_site.mailcatcher's reads."""
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted((directory / "new").iterdir())
    ]


def _subprocess_env(**overrides: str) -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "exchange_site.settings"}
    env.update(overrides)
    return env


@pytest.fixture
def site(settings):
    settings.SITE_URL = SITE
    settings.SITE_NAME = "Test Exchange"
    return settings


# --- Templates --------------------------------------------------------------------------


@pytest.fixture
def strict_templates(settings):
    """A variable a template names but the context lacks renders as a marker, not ""."""
    templates = [dict(engine) for engine in settings.TEMPLATES]
    templates[0]["OPTIONS"] = {**templates[0]["OPTIONS"], "string_if_invalid": "MISSING[%s]"}
    settings.TEMPLATES = templates


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_email_template_renders_subject_text_and_html(template, site, strict_templates):
    context, url_variable, security_notice = TEMPLATES[template]

    subject, text, html = email_render(template, context)

    assert subject.strip()
    assert "\n" not in subject
    assert subject == subject.strip()
    for body in (subject, text, html):
        assert "MISSING[" not in body
    assert "zoë" in text
    assert "zoë" in html
    assert "<html" in html
    assert "<html" not in text
    assert SITE in text  # the sign-off links the site
    if url_variable:
        url = context[url_variable]
        # Plain text is not HTML-escaped; the HTML is.
        assert url in text
        assert f'href="{escape(url)}"' in html
    if security_notice:
        assert RESET_LINE in text
        assert f'href="{SITE}/accounts/password/reset/"' in html
    if "user_agent" in context:
        assert "Mozilla/5.0 <Firefox>" in text
        assert "Mozilla/5.0 &lt;Firefox&gt;" in html


def test_email_templates_cover_exactly_the_documented_list():
    names = {
        path.name.removesuffix(".subject.txt")
        for path in (ROOT / "templates" / "email").glob("*.subject.txt")
    }

    assert names == set(TEMPLATES)
    for name in names:
        for suffix in (".txt", ".html"):
            assert (ROOT / "templates" / "email" / f"{name}{suffix}").is_file()


def test_two_factor_changed_says_which_way_it_changed(site):
    context = TEMPLATES["two_factor_changed"][0]

    on_subject, on_text, _ = email_render("two_factor_changed", {**context, "enabled": True})
    off_subject, off_text, _ = email_render("two_factor_changed", {**context, "enabled": False})

    assert "turned on" in on_subject
    assert "turned on" in on_text
    assert "turned off" in off_subject
    assert "turned off" in off_text


def test_password_changed_says_every_session_was_signed_out(site):
    _, text, html = email_render("password_changed", TEMPLATES["password_changed"][0])

    assert "Every session was signed out" in text
    assert "Every session was signed out" in html


def test_email_render_adds_site_name_and_url_over_the_callers(site):
    context = {**TEMPLATES["verify_email"][0], "site_url": "http://evil.example"}

    subject, text, _ = email_render("verify_email", context)

    assert "Test Exchange" in subject
    assert "evil.example" not in text
    assert text.rstrip().endswith(SITE)


def test_site_url_joins_the_configured_site_and_a_path(settings):
    settings.SITE_URL = "https://exchange.example.com/"

    assert site_url("/accounts/verify/abc/") == "https://exchange.example.com/accounts/verify/abc/"
    assert site_url("wallet/") == "https://exchange.example.com/wallet/"


# --- Sending through a real SMTP server -------------------------------------------------


@pytest.fixture
def catcher(tmp_path, settings):
    """The real mail catcher on a free port, and Django's real SMTP backend pointed at it."""
    port = _free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.DEFAULT_FROM_EMAIL = "Test Exchange <no-reply@exchange.test>"
    with MailCatcher(tmp_path / "mailbox", "127.0.0.1", port) as running:
        yield running


def test_email_send_now_delivers_text_and_html_through_smtp(catcher, site):
    context = TEMPLATES["verify_email"][0]

    email_send_now(to="alice@example.com", template="verify_email", context=context)

    [message] = _read_maildir(catcher.directory)
    subject, _, _ = email_render("verify_email", context)
    assert message["Subject"] == subject
    assert message["To"] == "alice@example.com"
    assert message["From"] == "Test Exchange <no-reply@exchange.test>"
    assert message["X-RcptTo"] == "alice@example.com"  # the envelope, as the catcher saw it
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Hello zoë," in text
    assert context["verify_url"] in text
    assert "<html" in html
    assert escape(context["verify_url"]) in html
    # The page's reads of the Maildir agree.
    [caught] = mailbox_message_list(catcher.directory)
    assert (caught.subject, caught.to) == (subject, "alice@example.com")
    assert caught.text.strip() == text.strip()
    assert "Hello zoë" in caught.html


def test_the_celery_task_sends_through_smtp(catcher, site):
    context = TEMPLATES["withdrawal_requested"][0]

    # Called directly, the task runs its body here: what the worker does with a message.
    email_send_task("bob@example.com", "withdrawal_requested", context)

    [message] = _read_maildir(catcher.directory)
    assert message["To"] == "bob@example.com"
    assert message["Subject"] == "Confirm your withdrawal of 0.5 BTC"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert context["confirm_url"] in text
    assert context["cancel_url"] in text
    assert context["withdrawals_url"] in text


def test_the_celery_task_retries_smtp_failures_with_backoff():
    assert email_send_task.name == "exchange_site.mail.email_send_task"
    assert issubclass(ConnectionRefusedError, email_send_task.autoretry_for)
    assert issubclass(smtplib.SMTPServerDisconnected, email_send_task.autoretry_for)
    assert not issubclass(TemplateDoesNotExist, email_send_task.autoretry_for)
    assert email_send_task.max_retries == 5
    assert email_send_task.retry_backoff == 30


def test_sending_to_a_closed_port_raises_for_the_task_to_retry(settings, site):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", _free_port()

    with pytest.raises(ConnectionRefusedError):
        email_send_now(
            to="alice@example.com", template="verify_email", context=TEMPLATES["verify_email"][0]
        )


def test_mail_catcher_refuses_a_taken_port_clearly(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]

        expected = rf"127\.0\.0\.1:{port} \(Address already in use\)\. Another SMTP server"
        with pytest.raises(MailCatcherError, match=expected):
            MailCatcher(tmp_path / "mailbox", "127.0.0.1", port).start()


def test_run_mailcatcher_command_stores_each_message_and_stops_on_sigterm(tmp_path):
    port = _free_port()
    directory = tmp_path / "mailbox"
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "run_mailcatcher",
            "--port",
            str(port),
            "--directory",
            str(directory),
        ],
        cwd=ROOT,
        env=_subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def answers() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False

        assert _wait_until(answers, timeout=30), "the catcher never listened"
        message = EmailMultiAlternatives("Hello from a test", "body", "a@example.com", ["c@x.io"])
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(message.message())

        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, output
    assert "caught email to c@x.io: Hello from a test" in output
    assert "mail.log" not in output  # aiosmtpd's per-command lines stay quiet
    [stored] = _read_maildir(directory)
    assert stored["Subject"] == "Hello from a test"


# --- After commit, on a real worker -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_email_send_on_commit_sends_through_a_real_worker_only_after_commit(site):
    """A real Celery worker (a thread, solo pool) on the real Redis broker; its sends land in
    pytest-django's locmem outbox, shared with this thread."""
    from celery.contrib.testing.worker import start_worker

    context = TEMPLATES["verify_email"][0]
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        with transaction.atomic():
            email_send_on_commit(to="rolled@example.com", template="verify_email", context=context)
            transaction.set_rollback(True)
        with transaction.atomic():
            email_send_on_commit(to="alice@example.com", template="verify_email", context=context)
            # Still inside the transaction: nothing is queued yet.
            time.sleep(0.3)
            assert mail.outbox == []

        assert _wait_until(lambda: len(mail.outbox) >= 1), "the worker sent nothing"

    # The worker takes tasks in order, so a queued rolled-back email would have come first.
    assert [message.to for message in mail.outbox] == [["alice@example.com"]]
    [message] = mail.outbox
    assert message.subject == email_render("verify_email", context)[0]
    assert message.alternatives[0].mimetype == "text/html"


@pytest.mark.django_db
def test_sent_emails_fixture_delivers_what_commits(sent_emails, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        email_send_on_commit(
            to="alice@example.com",
            template="password_reset",
            context=TEMPLATES["password_reset"][0],
        )
        assert sent_emails == []

    [message] = sent_emails
    assert message.to == ["alice@example.com"]
    assert TEMPLATES["password_reset"][0]["reset_url"] in message.body


@pytest.mark.django_db
def test_email_send_on_commit_keeps_the_context_as_it_was_at_the_call(
    sent_emails, django_capture_on_commit_callbacks
):
    context = dict(TEMPLATES["verify_email"][0])
    with django_capture_on_commit_callbacks(execute=True):
        email_send_on_commit(to="alice@example.com", template="verify_email", context=context)
        context["verify_url"] = "http://changed.example/"

    assert "http://changed.example/" not in sent_emails[0].body


@pytest.mark.parametrize(
    ("to", "template", "context", "error"),
    [
        ("alice@example.com", "verify_email", {"amount": Decimal("1.5")}, TypeError),
        ("alice@example.com", "verify_email", {"user": object()}, TypeError),
        ("alice@example.com", "no_such_email", {}, TemplateDoesNotExist),
        ("alice", "verify_email", {}, ValueError),
    ],
)
@pytest.mark.django_db
def test_email_send_on_commit_fails_loudly_at_the_call(
    to, template, context, error, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(error):
        email_send_on_commit(to=to, template=template, context=context)

    assert callbacks == []


def test_a_broker_that_refuses_the_task_is_logged_not_raised():
    """After commit the user's action stands: a dead broker is logged (template and the
    recipient's domain, never the address) and the caller carries on."""
    script = (
        "import django; django.setup()\n"
        "from django.db import transaction\n"
        "from exchange_site.mail import email_send_on_commit\n"
        "with transaction.atomic():\n"
        "    email_send_on_commit(to='secret.alice@example.com', template='verify_email',"
        " context={'username': 'a', 'verify_url': 'http://x/', 'expires_hours': 1})\n"
        "print('CALLER CARRIED ON')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=_subprocess_env(
            CELERY_BROKER_URL=f"redis://127.0.0.1:{_free_port()}/0",
            DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "CALLER CARRIED ON" in result.stdout
    assert "could not queue email 'verify_email' to a recipient at example.com" in result.stderr
    assert "secret.alice" not in result.stderr


# --- Settings and the worker's task list ------------------------------------------------


def test_the_worker_imports_the_email_task_and_settings_default_to_the_catcher(tmp_path):
    """A fresh process, as the worker starts: the task is registered by the app's own module
    list (exchange_site is no app, so autodiscovery would miss it)."""
    script = (
        "import json\n"
        "from exchange_site.celery import app\n"
        "app.loader.import_default_modules()\n"
        "from django.conf import settings as s\n"
        "print(json.dumps({'registered': 'exchange_site.mail.email_send_task' in app.tasks,"
        " 'backend': s.EMAIL_BACKEND, 'host': s.EMAIL_HOST, 'port': s.EMAIL_PORT,"
        " 'tls': s.EMAIL_USE_TLS, 'ssl': s.EMAIL_USE_SSL, 'timeout': s.EMAIL_TIMEOUT,"
        " 'from': s.DEFAULT_FROM_EMAIL, 'server': s.SERVER_EMAIL, 'site': s.SITE_URL,"
        " 'demo': s.DEMO_MODE, 'deposits': s.DEMO_DEPOSITS, 'mailbox': str(s.MAILBOX_DIR),"
        " 'catcher_port': s.MAILCATCHER_PORT}))\n"
    )
    env = _subprocess_env(DEMO_MODE="1", VAR_DIR=str(tmp_path))
    for name in list(env):
        if name.startswith(("EMAIL_", "MAILBOX_", "MAILCATCHER_", "SITE_")) or name in (
            "DEMO_DEPOSITS",
            "DEFAULT_FROM_EMAIL",
            "SERVER_EMAIL",
        ):
            del env[name]

    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "registered": True,
        "backend": "django.core.mail.backends.smtp.EmailBackend",
        "host": "127.0.0.1",
        "port": 1025,
        "tls": False,
        "ssl": False,
        "timeout": 10,
        "from": "Exchange <no-reply@localhost>",
        "server": "Exchange <no-reply@localhost>",
        "site": "http://127.0.0.1:8000",
        "demo": True,
        "deposits": True,  # DEMO_DEPOSITS follows DEMO_MODE unless set
        "mailbox": str(tmp_path / "mailbox"),
        "catcher_port": 1025,
    }


def test_settings_refuse_tls_and_ssl_together():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=_subprocess_env(EMAIL_USE_TLS="1", EMAIL_USE_SSL="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "Set EMAIL_USE_TLS (STARTTLS) or EMAIL_USE_SSL, not both." in result.stderr


# --- /dev/mailbox/ ----------------------------------------------------------------------


@pytest.fixture
def mailbox_dir(tmp_path, settings):
    settings.MAILBOX_DIR = tmp_path / "mailbox"
    return settings.MAILBOX_DIR


def _store(directory: Path, subject: str, text: str, html: str) -> str:
    message = EmailMultiAlternatives(subject, text, "Exchange <no-reply@x.test>", ["al@x.test"])
    message.attach_alternative(html, "text/html")
    return maildir_open(directory).add(message.message().as_bytes())


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_mailbox_is_not_found_without_demo_mode(client, settings, mailbox_dir, method):
    settings.DEMO_MODE = False
    key = _store(mailbox_dir, "Secret reset link", "http://x.test/reset/abc", "<p>x</p>")

    listing = getattr(client, method)("/dev/mailbox/")
    detail = client.get(f"/dev/mailbox/{key}/")

    assert listing.status_code == 404
    assert detail.status_code == 404
    assert b"Secret reset link" not in listing.content + detail.content
    assert b"/dev/mailbox/" not in detail.content  # no footer link either
    assert len(mailbox_message_list(mailbox_dir)) == 1  # a POST emptied nothing


@pytest.mark.django_db
def test_mailbox_lists_messages_newest_first_and_links_them(client, settings, mailbox_dir):
    settings.DEMO_MODE = True
    first = _store(mailbox_dir, "First email", "one", "<p>one</p>")
    time.sleep(0.01)
    second = _store(mailbox_dir, "Second email", "two", "<p>two</p>")

    response = client.get("/dev/mailbox/")

    assert response.status_code == 200
    page = response.content.decode()
    assert page.index("Second email") < page.index("First email")
    assert f'href="/dev/mailbox/{second}/"' in page
    assert f'href="/dev/mailbox/{first}/"' in page
    assert "al@x.test" in page
    assert 'href="/dev/mailbox/">Mailbox</a>' in page  # the footer link, demo mode only


@pytest.mark.django_db
def test_mailbox_message_shows_clickable_text_links_and_sandboxed_html(
    client, settings, mailbox_dir
):
    settings.DEMO_MODE = True
    url = "http://127.0.0.1:8000/accounts/verify/?t=abc&u=1"
    key = _store(
        mailbox_dir,
        "Confirm your email address",
        f"Open this link:\n\n{url}\n\nThanks <team>",
        "<!doctype html><html><head><title>t</title></head>"
        '<body><p>Hi</p><a href="http://x.test/">go</a><script>alert(1)</script></body></html>',
    )

    response = client.get(f"/dev/mailbox/{key}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert f'<a href="{escape(url)}" rel="nofollow">' in page
    assert "Thanks &lt;team&gt;" in page  # the rest of the text stays escaped
    assert "<dt>To</dt><dd>al@x.test</dd>" in page
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page
    assert "allow-scripts" not in page
    # The HTML part only inside the iframe's srcdoc, escaped into the attribute.
    assert "<script>alert(1)</script>" not in page
    # Links open in a new tab; the doctype stays first.
    assert 'srcdoc="&lt;!doctype html&gt;&lt;html&gt;&lt;head&gt;&lt;base target=' in page
    assert "&lt;p&gt;Hi&lt;/p&gt;" in page


@pytest.mark.django_db
def test_mailbox_message_unknown_key_is_not_found(client, settings, mailbox_dir):
    settings.DEMO_MODE = True
    _store(mailbox_dir, "One", "one", "<p>one</p>")

    assert client.get("/dev/mailbox/1700000000.M1P1Q1.nowhere/").status_code == 404


@pytest.mark.django_db
def test_mailbox_empty_button_needs_csrf_and_empties_it(settings, mailbox_dir):
    settings.DEMO_MODE = True
    _store(mailbox_dir, "One", "one", "<p>one</p>")
    _store(mailbox_dir, "Two", "two", "<p>two</p>")
    client = Client(enforce_csrf_checks=True)

    forged = client.post("/dev/mailbox/")
    assert forged.status_code == 403
    assert len(mailbox_message_list(mailbox_dir)) == 2

    page = client.get("/dev/mailbox/")
    token = page.context["csrf_token"]
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    response = client.post("/dev/mailbox/", {"csrfmiddlewaretoken": str(token)}, follow=True)

    assert response.redirect_chain == [("/dev/mailbox/", 302)]
    assert mailbox_message_list(mailbox_dir) == []
    assert "Mailbox emptied (2 emails)." in response.content.decode()
    assert "No email yet." in response.content.decode()
