"""Withdrawals need a confirmed email address, and every withdrawal request is emailed to the
account's owner (with the link that confirms it)."""

import re
from decimal import Decimal

import pytest

from accounts.tests.factories import UserFactory
from wallets.models import Withdrawal
from wallets.tests.helpers import assert_error, assert_ledger_ok, balance_of, money_state

pytestmark = pytest.mark.django_db

WITHDRAWALS = "/api/v1/wallets/withdrawals"
OWN_RESEND = "/api/v1/users/email/verify/resend"
VERIFY = "/api/v1/auth/email/verify"


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed(): ...`` runs the on-commit callbacks (the emails) of what it wraps."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def withdraw(client, amount="0.4", address="sim-out-1"):
    return client.post(
        WITHDRAWALS, {"asset": "BTC", "amount": amount, "address": address}, format="json"
    )


def test_a_withdrawal_request_emails_the_owner(sent_emails, committed, client_for, btc, fund):
    user = UserFactory()
    fund(user, btc, "1")

    with committed():
        response = withdraw(client_for(user))

    assert response.status_code == 201, response.content
    [message] = sent_emails
    assert message.to == [user.email]
    assert message.subject.startswith("Confirm your withdrawal of 0.40000000 BTC")
    assert "sim-out-1" in message.body
    assert f"Withdrawal: #{response.json()['id']}" in message.body
    assert "Fee: 0.00010000 BTC" in message.body
    assert "/wallet/withdrawals/confirm/" in message.body


def test_an_unverified_account_cannot_withdraw_and_nothing_is_reserved(
    sent_emails, committed, client_for, btc, fund
):
    user = UserFactory(is_verified=False)
    fund(user, btc, "1")
    before = money_state()

    with committed():
        response = withdraw(client_for(user))

    assert_error(response, 403, "EMAIL_NOT_VERIFIED")
    assert money_state() == before
    assert balance_of(user, btc) == (Decimal("1"), Decimal("0"))
    assert not Withdrawal.objects.filter(user=user).exists()
    assert sent_emails == []
    assert_ledger_ok()


def test_confirming_the_address_lets_the_account_withdraw(
    sent_emails, committed, client_for, btc, fund
):
    user = UserFactory(is_verified=False)
    fund(user, btc, "1")
    client = client_for(user)
    assert_error(withdraw(client), 403, "EMAIL_NOT_VERIFIED")
    with committed():
        assert client.post(OWN_RESEND).status_code == 202
    [message] = sent_emails
    token = re.search(r"/accounts/verify-email/([^/\s]+)/", message.body).group(1)
    assert client.post(VERIFY, {"token": token}, format="json").status_code == 200

    response = withdraw(client)

    assert response.status_code == 201, response.content
    assert balance_of(user, btc) == (Decimal("0.5999"), Decimal("0.4001"))
    assert_ledger_ok()
