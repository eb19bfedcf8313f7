"""Account recovery in a browser, the way a newcomer follows it under ``make run``: emails go
through the real Celery worker and SMTP to the mail catcher, and the links are clicked from
the demo mailbox page (/dev/mailbox/).

sign-up → confirm by the emailed link → forgot password → reset by the emailed link → log in;
and signing out another session from the sessions page ends it at its next request."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import AuthSession, User
from exchange_site.mailcatcher import MailCatcher
from exchange_site.tests.browser.conftest import screenshot
from testsupport.stack import LiveStack, free_port, seed_markets

PASSWORD = "orange-kite-meadow-42"
NEW_PASSWORD = "violet-harbour-lantern-77"


@pytest.fixture
def live_stack(transactional_db, request, tmp_path):
    """The real processes plus a Celery worker, in demo mode, mailing to a catcher that runs
    in this test process and stores into a Maildir the mailbox page reads."""
    seed_markets()
    mailbox_dir = tmp_path / "mailbox"
    catcher = MailCatcher(mailbox_dir, port=free_port()).start()
    stack = LiveStack(
        name=request.node.name[:60],
        extra_env={
            "DEMO_MODE": "1",
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(catcher.port),
            "MAILBOX_DIR": str(mailbox_dir),
        },
    )
    stack.extra_env["SITE_URL"] = stack.web_url
    try:
        stack.start()
        stack.start_worker()
        yield stack
    finally:
        stack.stop()
        catcher.stop()


def open_email(page, subject: str):
    """Reload the mailbox until an email whose subject matches arrives, then open it."""
    link = page.locator("#mailbox a", has_text=re.compile(subject, re.IGNORECASE)).first
    for _ in range(40):
        page.goto("/dev/mailbox/")
        if link.count():
            break
        page.wait_for_timeout(500)
    link.click()
    expect(page.locator(".mail-text")).to_be_visible()


def test_signup_verify_forgot_reset_and_login(live_stack, new_page):
    page = new_page()
    page.goto("/accounts/signup/")
    page.get_by_label("Email").fill("noor@example.com")
    page.get_by_label("Username").fill("noor")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("We sent a link to noor@example.com")).to_be_visible()
    page.goto("/accounts/profile/")
    expect(page.locator("#email-status")).to_contain_text("Not confirmed")

    # The confirmation email, from the demo mailbox: its link confirms the address.
    open_email(page, "confirm")
    page.locator(".mail-text a", has_text="/accounts/verify-email/").click()
    expect(page.get_by_text("Your email address is confirmed.")).to_be_visible()
    page.goto("/accounts/profile/")
    expect(page.locator("#email-status")).to_contain_text("Confirmed")
    user = User.objects.get(email="noor@example.com")
    assert user.is_verified
    assert user.email_verified_at is not None

    # Forgot the password: log out, ask for a reset from the login page.
    page.goto("/accounts/logout/")
    page.locator("main").get_by_role("button", name="Log out").click()
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("noor@example.com")
    page.get_by_role("button", name="Send the reset link").click()
    expect(page.locator("#email-sent")).to_contain_text("If an account has this address")
    screenshot(page, "password-reset-sent")

    open_email(page, "reset")
    page.locator(".mail-text a", has_text="/accounts/password/reset/").click()
    expect(page).to_have_url(re.compile(r"/set-password/$"))
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    screenshot(page, "password-reset-set")
    page.get_by_role("button", name="Set the new password").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.get_by_text("Your password is changed")).to_be_visible()

    # The old password no longer logs in; the new one does.
    page.get_by_label("Email or username").fill("noor")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".errorlist")).to_be_visible()
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="noor")).to_be_visible()

    # The reset link was single-use, and the owner was told about the change by email.
    open_email(page, "password was changed|password changed")
    expect(page.locator(".mail-text")).to_contain_text("noor")


def test_signing_out_another_session_ends_it_at_its_next_request(live_stack, new_page):
    live_stack.create_user(email="sam@example.com", username="sam", password=PASSWORD)
    laptop, phone = new_page(), new_page()
    for page in (laptop, phone):
        page.goto("/accounts/login/")
        page.get_by_label("Email or username").fill("sam")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("link", name="sam")).to_be_visible()
    assert AuthSession.objects.filter(user__username="sam", revoked_at__isnull=True).count() == 2

    laptop.goto("/accounts/sessions/")
    rows = laptop.locator("#sessions tbody tr")
    expect(rows).to_have_count(2)
    current = rows.filter(has_text="(this one)")
    other = rows.filter(has_not_text="(this one)")
    expect(current).to_have_count(1)
    expect(laptop.locator("#login-history tbody tr").first).to_contain_text("Logged in")
    screenshot(laptop, "sessions")
    other.get_by_role("button", name="Sign out").click()
    expect(laptop.get_by_text("The session is signed out.")).to_be_visible()
    expect(laptop.locator("#sessions tbody tr")).to_have_count(1)

    # The phone's very next request is anonymous; the laptop stays in.
    phone.goto("/accounts/profile/")
    expect(phone).to_have_url(re.compile(r"/accounts/login/"))
    laptop.goto("/accounts/profile/")
    expect(laptop).to_have_url(re.compile(r"/accounts/profile/$"))
