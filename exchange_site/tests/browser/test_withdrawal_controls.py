"""Withdrawal controls in a browser, against the real processes and a Celery worker that mails
through SMTP to the catcher behind the demo mailbox page (/dev/mailbox/):

- a saved address is listed as not usable until its cool-down ends, then a withdrawal to it
  waits for the emailed link, and once confirmed for review;
- a withdrawal over the four-eyes threshold needs two operators in the admin: the first
  approval moves it to the second queue, the first operator cannot give the second, another
  operator does, and the worker sends it. The ledger balances at the end.
"""

import re
import time
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import User
from exchange_site.mailcatcher import MailCatcher
from exchange_site.tests.browser.conftest import operators_group_restore, screenshot
from exchange_site.tests.browser.test_account_recovery import open_email
from testsupport.helpers import assert_ledger_ok
from testsupport.stack import LiveStack, free_port, seed_markets
from wallets.models import Asset, Balance, Withdrawal, WithdrawalAddress

PASSWORD = "amber-willow-compass-31"
COOLDOWN_SECONDS = 8
BTC_PRICE = Decimal("10000")  # the operator-set reference price: 0.6 BTC is within the limit


@pytest.fixture
def live_stack(transactional_db, request, tmp_path):
    """The real processes plus a Celery worker in demo mode, mailing to a catcher in this
    process; a short address cool-down, and a second approval for more than 0.5 BTC."""
    seed_markets()
    Asset.objects.filter(code="BTC").update(reference_price=BTC_PRICE)
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
            "WITHDRAWAL_ADDRESS_COOLDOWN_SECONDS": str(COOLDOWN_SECONDS),
            "WITHDRAWAL_SECOND_APPROVAL_OVER": "BTC=0.5,*=0",
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


def log_in(page, login: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email or username").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".who")).to_be_visible()


def confirm_by_email(page, subject: str) -> None:
    """Follow the confirm link of the withdrawal email whose subject matches."""
    open_email(page, subject)
    page.locator(".mail-text a", has_text="/wallet/withdrawals/confirm/").click()
    expect(page.get_by_role("heading", name="Confirm this withdrawal?")).to_be_visible()
    page.get_by_role("button", name="Confirm withdrawal").click()
    expect(page.get_by_role("heading", name="Withdrawal confirmed")).to_be_visible()


def test_saved_address_cools_down_then_a_withdrawal_to_it_waits_for_the_email(live_stack, new_page):
    user = live_stack.create_user(
        email="ada@example.com", username="ada", password=PASSWORD, funds={"BTC": "1"}
    )
    page = new_page()
    log_in(page, "ada")
    page.goto("/wallet/")

    book = page.locator("#address-book")
    book.get_by_label("Asset", exact=True).select_option("BTC")
    book.get_by_label("Label", exact=True).fill("Cold storage")
    book.get_by_label("Address", exact=True).fill("bc1-cold-storage-0001")
    book.get_by_role("button", name="Save address").click()
    expect(page.locator("#book-add-status")).to_contain_text("Saved “Cold storage”")
    saved = WithdrawalAddress.objects.get(user=user)
    assert saved.address == "bc1-cold-storage-0001"
    row = page.locator(f'#saved-addresses tr[data-address-id="{saved.pk}"]')
    expect(row).to_contain_text("Cold storage")
    usable = row.locator("td").nth(3)
    expect(usable).to_have_text(re.compile(r"^from \d{4}-\d\d-\d\d \d\d:\d\d"))

    # Cooling down, on a fresh page too: listed with its time, and offered as a destination
    # but disabled, saying from when.
    page.reload()
    expect(usable).to_have_text(re.compile(r"^from \d{4}-\d\d-\d\d \d\d:\d\d UTC$"))
    page.locator("#withdraw-asset").select_option("BTC")
    option = page.locator(f'#withdraw-saved option[value="{saved.pk}"]')
    expect(option).to_be_disabled()
    expect(option).to_contain_text("Cold storage: bc1-cold-storage-0001 (usable from ")
    screenshot(page, "wallet-address-cooling-down")

    # The owner was told by email that an address was added.
    mail = new_page()
    open_email(mail, "New BTC withdrawal address saved: Cold storage")
    expect(mail.locator(".mail-text")).to_contain_text("bc1-cold-storage-0001")

    # Once the cool-down is over (a fresh page), the address can be chosen.
    time.sleep(max((saved.usable_from - timezone.now()).total_seconds(), 0) + 0.5)
    page.reload()
    expect(usable).to_have_text("yes")
    page.locator("#withdraw-asset").select_option("BTC")
    expect(option).to_be_enabled()
    page.locator("#withdraw-saved").select_option(str(saved.pk))
    expect(page.locator("#withdraw-address-row")).to_be_hidden()
    page.locator("#withdraw-amount").fill("0.25")
    page.get_by_role("button", name="Request withdrawal").click()
    expect(page.locator("#withdraw-status")).to_contain_text(
        re.compile(r"Withdrawal of 0\.250* BTC requested")
    )
    withdrawal = Withdrawal.objects.get(user=user)
    assert (withdrawal.address, withdrawal.amount) == (saved.address, Decimal("0.25"))
    status = page.locator(
        f'#withdrawals tr[data-withdrawal-id="{withdrawal.pk}"] [data-field="status"]'
    )
    expect(status).to_have_text("Awaiting email confirmation")

    confirm_by_email(mail, r"Confirm your withdrawal of 0\.250* BTC")
    page.goto("/wallet/")
    expect(status).to_have_text("Awaiting review")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.REQUESTED
    assert not withdrawal.needs_second_approval
    assert_ledger_ok()


def _operator(stack, name: str) -> User:
    operator = stack.create_user(email=f"{name}@example.com", username=name, password=PASSWORD)
    User.objects.filter(pk=operator.pk).update(is_staff=True)
    operator.groups.add(Group.objects.get(name="operators"))
    return operator


def _admin_log_in(page, operator: User) -> None:
    page.goto("/admin/")
    page.locator("#id_username").fill(operator.email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#user-tools")).to_contain_text(operator.username)


def _approve(page, withdrawal: Withdrawal, stage: str, reason: str) -> None:
    """From the withdrawals changelist filtered by review ``stage``: select, approve, say why."""
    page.goto("/admin/wallets/withdrawal/")
    page.locator("#changelist-filter").get_by_role("link", name=stage).click()
    expect(page).to_have_url(re.compile(r"[?&]stage="))
    page.locator(f'input.action-select[value="{withdrawal.pk}"]').check()
    page.locator("select[name=action]").select_option(
        label="Approve selected withdrawals (large ones need a second operator)"
    )
    page.get_by_role("button", name="Go").click()
    expect(page.get_by_role("heading", name="Approve withdrawals")).to_be_visible()
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name="Approve withdrawals").click()
    expect(page.locator("ul.messagelist")).to_be_visible()


def _status_cell(page, withdrawal: Withdrawal):
    row = page.locator("#result_list tbody tr").filter(
        has=page.locator(f'input.action-select[value="{withdrawal.pk}"]')
    )
    return row.locator("td.field-status")


def test_a_large_withdrawal_needs_two_operators_in_the_admin(live_stack, new_page):
    operators_group_restore()
    user = live_stack.create_user(
        email="bea@example.com", username="bea", password=PASSWORD, funds={"BTC": "1"}
    )
    first, second = _operator(live_stack, "olga"), _operator(live_stack, "omar")

    page = new_page()
    log_in(page, "bea")
    page.goto("/wallet/")
    page.locator("#withdraw-asset").select_option("BTC")
    page.locator("#withdraw-saved").select_option("")
    page.locator("#withdraw-amount").fill("0.6")
    page.locator("#withdraw-address").fill("bc1-big-spend-0002")
    page.get_by_role("button", name="Request withdrawal").click()
    expect(page.locator("#withdraw-status")).to_contain_text(
        re.compile(r"Withdrawal of 0\.60* BTC requested")
    )
    withdrawal = Withdrawal.objects.get(user=user)
    assert withdrawal.needs_second_approval
    confirm_by_email(page, r"Confirm your withdrawal of 0\.60* BTC")

    # The first operator approves from the first queue: it moves to the second one.
    one = new_page()
    _admin_log_in(one, first)
    _approve(one, withdrawal, "Waiting for a first approval", "Known customer; address checked")
    expect(one.locator("ul.messagelist li.success")).to_have_text("1 approval(s) recorded.")
    one.locator("#changelist-filter").get_by_role(
        "link", name="Waiting for a second approval"
    ).click()
    expect(_status_cell(one, withdrawal)).to_have_text(
        re.compile("^awaiting second approval$", re.I)
    )
    withdrawal.refresh_from_db()
    assert (withdrawal.status, withdrawal.first_approved_by) == (
        Withdrawal.Status.AWAITING_SECOND_APPROVAL,
        first,
    )

    # The same operator cannot give the second approval too.
    _approve(one, withdrawal, "Waiting for a second approval", "Approving again")
    expect(one.locator("ul.messagelist li.warning")).to_contain_text(
        "You gave this withdrawal its first approval"
    )
    expect(one.locator("ul.messagelist li.success")).to_have_count(0)
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.AWAITING_SECOND_APPROVAL
    screenshot(one, "admin-withdrawal-self-approval-refused")

    # Another operator, in a browser of their own, gives it.
    two = new_page()
    _admin_log_in(two, second)
    _approve(two, withdrawal, "Waiting for a second approval", "Second look: fine")
    expect(two.locator("ul.messagelist li.success")).to_have_text("1 approval(s) recorded.")

    # The worker sends it on the simulated chain.
    deadline = time.monotonic() + 20
    while Withdrawal.objects.get(pk=withdrawal.pk).status != Withdrawal.Status.COMPLETED:
        assert time.monotonic() < deadline, Withdrawal.objects.get(pk=withdrawal.pk).status
        time.sleep(0.2)
    two.goto(f"/admin/wallets/withdrawal/?user={user.pk}")
    expect(_status_cell(two, withdrawal)).to_have_text(re.compile("^completed$", re.I))
    withdrawal.refresh_from_db()
    assert (withdrawal.reviewed_by, withdrawal.review_note) == (second, "Second look: fine")
    balance = Balance.objects.get(user=user, asset__code="BTC")
    assert (balance.available, balance.locked) == (Decimal("0.3999"), Decimal(0))
    assert_ledger_ok()
