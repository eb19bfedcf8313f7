"""The controls that keep money in the exchange (issue 19): 24-hour limits by tier, the
address book and its allow-list, confirmation by email with expiry, and four eyes on large
withdrawals and on every balance adjustment. ``check_ledger`` stays clean after each."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.exceptions import EmailNotVerified, OtpRequired
from accounts.models import OperatorAction
from accounts.tests.factories import UserFactory
from accounts.tests.twofactor_helpers import enable_two_factor, fresh_code
from testsupport.helpers import run_concurrently
from trading.tests.factories import MarketFactory
from wallets import limits, services
from wallets.exceptions import (
    AdjustmentStateConflict,
    InsufficientBalance,
    SelfApprovalRefused,
    WithdrawalAddressCoolingDown,
    WithdrawalAddressExists,
    WithdrawalAddressNotAllowed,
    WithdrawalLimitExceeded,
    WithdrawalLinkInvalid,
    WithdrawalStateConflict,
    WithdrawalUnpriced,
)
from wallets.models import (
    BalanceAdjustment,
    LedgerEntry,
    Withdrawal,
    WithdrawalAddress,
    WithdrawalTier,
)
from wallets.tests.factories import AssetFactory
from wallets.tests.helpers import (
    assert_ledger_ok,
    balance_of,
    money_state,
    withdrawal_confirm_by_email,
)


def _request(user, amount, asset="BTC", address="bc1qdest", **kwargs):
    return services.withdrawal_request(
        user=user, asset_code=asset, amount=Decimal(amount), address=address, **kwargs
    )


@pytest.fixture
def funded(user, btc, usd, fund):
    fund(user, btc, "200")  # BTC is worth 100 USD here (btc.reference_price)
    fund(user, usd, "50000")
    return user


@pytest.fixture
def second_operator(db):
    return UserFactory(is_staff=True)


# --- Limits -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_default_tier_limits_a_verified_account_over_24_hours(funded):
    limit = limits.withdrawal_limit_get(user=funded)
    assert (limit.tier.code, limit.daily_limit, limit.used) == ("verified", Decimal(10000), 0)

    _request(funded, "60")  # 6,000 USD
    assert limits.withdrawal_limit_get(user=funded).remaining == Decimal(4000)
    before = money_state()
    with pytest.raises(WithdrawalLimitExceeded) as refused:
        _request(funded, "40.01")

    assert refused.value.details["remaining"] == "4000.00"
    assert refused.value.details["value"] == "4001.00"
    assert money_state() == before  # nothing reserved
    _request(funded, "40")  # exactly what is left
    assert limits.withdrawal_limit_get(user=funded).remaining == 0
    assert_ledger_ok()


@pytest.mark.django_db
def test_the_window_rolls_and_returned_money_frees_the_limit(funded):
    old = _request(funded, "90")
    cancelled = _request(funded, "9")
    services.withdrawal_cancel(user=funded, withdrawal_id=cancelled.pk)
    assert limits.withdrawal_limit_get(user=funded).used == Decimal(9000)

    Withdrawal.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=24))

    assert limits.withdrawal_limit_get(user=funded).used == 0
    _request(funded, "99")


@pytest.mark.django_db
def test_an_operator_granted_tier_raises_the_limit_and_is_audited(funded, operator):
    trusted = WithdrawalTier.objects.get(code="trusted")
    with pytest.raises(WithdrawalLimitExceeded):
        _request(funded, "150")

    services.withdrawal_tier_grant(
        user=funded, tier=trusted, operator=operator, reason="KYC level 2 reviewed"
    )

    assert _request(funded, "150").limit_value == Decimal(15000)
    record = OperatorAction.objects.get(action="withdrawal_tier_grant")
    assert record.details == {"from": None, "to": "trusted"}
    services.withdrawal_tier_grant(user=funded, tier=None, operator=operator, reason="back")
    assert limits.withdrawal_tier_for_user(user=funded).code == "verified"


@pytest.mark.django_db
def test_an_unverified_account_has_no_tier_and_cannot_withdraw(btc, fund):
    user = UserFactory(is_verified=False)
    fund(user, btc, "1")
    assert limits.withdrawal_limit_get(user=user).daily_limit == 0
    with pytest.raises(EmailNotVerified):
        _request(user, "0.1")


@pytest.mark.django_db
def test_prices_come_from_the_markets_then_the_operators_reference(btc, usd):
    sol = AssetFactory(code="SOL", reference_price=None)
    xyz = AssetFactory(code="XYZ", reference_price=Decimal("0.5"))
    nothing = AssetFactory(code="NOPE", reference_price=None)
    assert limits.asset_reference_price(asset=usd) == 1
    assert limits.asset_reference_price(asset=btc) == Decimal(100)  # no trade yet
    assert limits.asset_reference_price(asset=xyz) == Decimal("0.5")
    assert limits.asset_reference_price(asset=nothing) is None
    assert limits.asset_reference_price(asset=sol) is None

    MarketFactory(symbol="BTC-USD", base_asset=btc, quote_asset=usd, last_price=Decimal(60000))
    MarketFactory(symbol="SOL-BTC", base_asset=sol, quote_asset=btc, last_price=Decimal("0.002"))
    MarketFactory(symbol="USD-XYZ", base_asset=usd, quote_asset=xyz, last_price=Decimal(4))

    assert limits.asset_reference_price(asset=btc) == Decimal(60000)  # the last trade wins
    assert limits.asset_reference_price(asset=sol) == Decimal(120)  # via BTC-USD
    assert limits.asset_reference_price(asset=xyz) == Decimal("0.25")  # reverse market
    with pytest.raises(WithdrawalUnpriced):
        limits.withdrawal_limit_value(asset=nothing, amount=Decimal(1))


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_withdrawals_that_together_pass_the_limit_one_is_refused(btc, fund):
    user = UserFactory()
    fund(user, btc, "200")

    results = run_concurrently(2, lambda i: _request(user, "60", address=f"addr-{i}"))

    made = [r for r in results if isinstance(r, Withdrawal)]
    refused = [r for r in results if isinstance(r, WithdrawalLimitExceeded)]
    assert (len(made), len(refused)) == (1, 1), results
    assert Withdrawal.objects.filter(user=user).count() == 1
    assert balance_of(user, btc) == (Decimal("139.9999"), Decimal("60.0001"))
    assert_ledger_ok()


# --- Address book -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_saved_address_is_usable_after_its_cool_down_and_is_emailed(
    funded, sent_emails, django_capture_on_commit_callbacks, settings
):
    settings.WITHDRAWAL_ADDRESS_COOLDOWN_SECONDS = 3600
    with django_capture_on_commit_callbacks(execute=True):
        saved = services.withdrawal_address_add(
            user=funded, asset_code="btc", address="bc1qcold", label="Cold wallet"
        )

    [email] = sent_emails
    assert "Cold wallet" in email.subject
    assert "bc1qcold" in email.body
    with pytest.raises(WithdrawalAddressCoolingDown):
        services.withdrawal_request(
            user=funded, asset_code="BTC", amount=Decimal(1), address_id=saved.pk
        )
    WithdrawalAddress.objects.filter(pk=saved.pk).update(usable_from=timezone.now())
    withdrawal = services.withdrawal_request(
        user=funded, asset_code="BTC", amount=Decimal(1), address_id=saved.pk
    )
    assert withdrawal.address == "bc1qcold"
    with pytest.raises(WithdrawalAddressExists):
        services.withdrawal_address_add(
            user=funded, asset_code="BTC", address="bc1qcold", label="again"
        )


@pytest.mark.django_db
def test_the_allow_list_admits_only_saved_addresses_past_their_cool_down(funded):
    services.withdrawal_allowlist_set(user=funded, enabled=True)
    saved = services.withdrawal_address_add(
        user=funded, asset_code="BTC", address="bc1qsaved", label="Mine"
    )
    before = money_state()

    with pytest.raises(WithdrawalAddressNotAllowed):
        _request(funded, "1", address="bc1qstranger")
    with pytest.raises(WithdrawalAddressCoolingDown):
        _request(funded, "1", address="bc1qsaved")
    assert money_state() == before

    WithdrawalAddress.objects.filter(pk=saved.pk).update(usable_from=timezone.now())
    assert _request(funded, "1", address="bc1qsaved").address == "bc1qsaved"
    services.withdrawal_allowlist_set(user=funded, enabled=False)
    assert _request(funded, "1", address="bc1qstranger").address == "bc1qstranger"


@pytest.mark.django_db
def test_two_factor_guards_adding_an_address_and_turning_the_allow_list_off(funded):
    secret, _codes = enable_two_factor(funded)
    with pytest.raises(OtpRequired):
        services.withdrawal_address_add(user=funded, asset_code="BTC", address="bc1qx", label="X")
    services.withdrawal_address_add(
        user=funded,
        asset_code="BTC",
        address="bc1qx",
        label="X",
        otp_code=fresh_code(funded, secret),
    )
    services.withdrawal_allowlist_set(user=funded, enabled=True)  # on: no code needed
    with pytest.raises(OtpRequired):
        services.withdrawal_allowlist_set(user=funded, enabled=False)
    profile = services.withdrawal_allowlist_set(
        user=funded, enabled=False, otp_code=fresh_code(funded, secret)
    )
    assert profile.allowlist_enabled is False


# --- Confirmation by email --------------------------------------------------------------


def _links(body: str) -> tuple[str, str]:
    confirm = re.search(r"/wallet/withdrawals/confirm/([^/\s]+)/", body).group(1)
    cancel = re.search(r"/wallet/withdrawals/cancel/([^/\s]+)/", body).group(1)
    return confirm, cancel


@pytest.mark.django_db
def test_a_request_waits_for_its_emailed_link_before_operators_see_it(
    funded, operator, sent_emails, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        withdrawal = _request(funded, "0.4")  # under BTC's four-eyes threshold
    assert withdrawal.status == Withdrawal.Status.AWAITING_CONFIRMATION
    with pytest.raises(WithdrawalStateConflict):
        services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)

    [email] = sent_emails
    confirm, _cancel = _links(email.body)
    confirmed = services.withdrawal_confirm(token=confirm)

    assert confirmed.status == Withdrawal.Status.REQUESTED
    assert services.withdrawal_confirm(token=confirm).status == Withdrawal.Status.REQUESTED
    with pytest.raises(WithdrawalLinkInvalid):
        services.withdrawal_confirm(token=confirm[:-2] + "xx")
    assert services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator).status == (
        Withdrawal.Status.APPROVED
    )


@pytest.mark.django_db
def test_the_cancel_link_releases_the_funds_without_a_login(
    funded, btc, sent_emails, django_capture_on_commit_callbacks, client
):
    with django_capture_on_commit_callbacks(execute=True):
        _request(funded, "1")
    _confirm, cancel = _links(sent_emails[0].body)

    asked = client.get(f"/wallet/withdrawals/cancel/{cancel}/")
    assert asked.status_code == 200
    assert b"Cancel this withdrawal?" in asked.content
    assert balance_of(funded, btc) == (
        Decimal("198.9999"),
        Decimal("1.0001"),
    )  # GET changes nothing
    done = client.post(f"/wallet/withdrawals/cancel/{cancel}/")

    assert b"Withdrawal cancelled" in done.content
    assert balance_of(funded, btc) == (Decimal(200), Decimal(0))
    assert Withdrawal.objects.get().status == Withdrawal.Status.CANCELLED
    assert_ledger_ok()


@pytest.mark.django_db
def test_the_confirm_page_asks_on_get_and_confirms_on_post(
    funded, sent_emails, django_capture_on_commit_callbacks, client
):
    with django_capture_on_commit_callbacks(execute=True):
        _request(funded, "1")
    confirm, _cancel = _links(sent_emails[0].body)

    assert (
        b"Confirm this withdrawal?" in client.get(f"/wallet/withdrawals/confirm/{confirm}/").content
    )
    assert Withdrawal.objects.get().status == Withdrawal.Status.AWAITING_CONFIRMATION
    assert b"Withdrawal confirmed" in client.post(f"/wallet/withdrawals/confirm/{confirm}/").content
    assert Withdrawal.objects.get().status == Withdrawal.Status.REQUESTED
    assert client.get("/wallet/withdrawals/confirm/garbage/").status_code == 400


@pytest.mark.django_db
def test_unconfirmed_requests_expire_and_release_their_funds(funded, btc):
    kept = _request(funded, "1")
    withdrawal_confirm_by_email(kept)
    lapsed = _request(funded, "2")
    token = services.withdrawal_link_token(withdrawal=lapsed, salt=services.CONFIRM_SALT)
    Withdrawal.objects.filter(pk=lapsed.pk).update(expires_at=timezone.now())

    assert services.withdrawals_expire_unconfirmed() == 1
    assert services.withdrawals_expire_unconfirmed() == 0

    assert Withdrawal.objects.get(pk=lapsed.pk).status == Withdrawal.Status.EXPIRED
    assert Withdrawal.objects.get(pk=kept.pk).status == Withdrawal.Status.REQUESTED
    assert balance_of(funded, btc) == (Decimal("198.9999"), Decimal("1.0001"))
    assert limits.withdrawal_limit_get(user=funded).used == Decimal(100)  # expired: not counted
    with pytest.raises(WithdrawalStateConflict):
        services.withdrawal_confirm(token=token)
    assert_ledger_ok()


@pytest.mark.django_db
def test_an_expired_link_is_refused(funded, settings):
    withdrawal = _request(funded, "1")
    token = services.withdrawal_link_token(withdrawal=withdrawal, salt=services.CONFIRM_SALT)
    settings.WITHDRAWAL_CONFIRM_SECONDS = -1

    with pytest.raises(WithdrawalLinkInvalid):
        services.withdrawal_confirm(token=token)
    assert Withdrawal.objects.get().status == Withdrawal.Status.AWAITING_CONFIRMATION


# --- Four eyes --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_large_withdrawal_needs_two_different_operators(
    funded, btc, operator, second_operator, settings
):
    settings.WITHDRAWAL_SECOND_APPROVAL_OVER = {"BTC": "10"}
    small = withdrawal_confirm_by_email(_request(funded, "10"))
    large = withdrawal_confirm_by_email(_request(funded, "10.5"))
    assert (small.needs_second_approval, large.needs_second_approval) == (False, True)

    first = services.withdrawal_approve(withdrawal_id=large.pk, reviewer=operator, note="ok 1")
    assert first.status == Withdrawal.Status.AWAITING_SECOND_APPROVAL
    with pytest.raises(SelfApprovalRefused):
        services.withdrawal_approve(withdrawal_id=large.pk, reviewer=operator, note="me again")
    second = services.withdrawal_approve(
        withdrawal_id=large.pk, reviewer=second_operator, note="ok 2"
    )

    assert second.status == Withdrawal.Status.APPROVED
    assert (second.first_approved_by, second.reviewed_by) == (operator, second_operator)
    actions = list(
        OperatorAction.objects.filter(target_id=str(large.pk))
        .order_by("id")
        .values_list("action", "actor")
    )
    assert actions == [
        ("withdrawal_approve_first", operator.pk),
        ("withdrawal_approve", second_operator.pk),
    ]
    assert services.withdrawal_approve(withdrawal_id=small.pk, reviewer=operator).status == (
        Withdrawal.Status.APPROVED
    )
    assert_ledger_ok()


@pytest.mark.django_db
def test_no_operator_approves_their_own_withdrawal(btc, fund, operator):
    fund(operator, btc, "1")
    withdrawal = withdrawal_confirm_by_email(_request(operator, "0.1"))

    with pytest.raises(SelfApprovalRefused):
        services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)
    assert Withdrawal.objects.get().status == Withdrawal.Status.REQUESTED


@pytest.mark.django_db
def test_the_database_refuses_one_operator_in_both_approvals(funded, operator, settings):
    settings.WITHDRAWAL_SECOND_APPROVAL_OVER = {"BTC": "0"}
    withdrawal = withdrawal_confirm_by_email(_request(funded, "1"))
    services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)

    with pytest.raises(IntegrityError), transaction.atomic():
        Withdrawal.objects.filter(pk=withdrawal.pk).update(status="approved", reviewed_by=operator)


@pytest.mark.django_db
def test_either_operator_can_still_reject_after_the_first_approval(funded, btc, operator, settings):
    settings.WITHDRAWAL_SECOND_APPROVAL_OVER = {"BTC": "0"}
    withdrawal = withdrawal_confirm_by_email(_request(funded, "1"))
    services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)

    rejected = services.withdrawal_reject(
        withdrawal_id=withdrawal.pk, reviewer=operator, reason="second look: mule account"
    )

    assert rejected.status == Withdrawal.Status.REJECTED
    assert balance_of(funded, btc) == (Decimal(200), Decimal(0))
    assert_ledger_ok()


@pytest.mark.django_db
def test_a_balance_adjustment_changes_nothing_until_another_operator_approves(
    user, btc, operator, second_operator
):
    adjustment = services.balance_adjust(
        user=user, asset=btc, amount=Decimal("2.5"), reason="goodwill #41", operator=operator
    )
    assert adjustment.status == BalanceAdjustment.Status.PENDING
    assert not LedgerEntry.objects.filter(user=user).exists()
    with pytest.raises(SelfApprovalRefused):
        services.balance_adjustment_approve(adjustment_id=adjustment.pk, reviewer=operator)

    applied = services.balance_adjustment_approve(
        adjustment_id=adjustment.pk, reviewer=second_operator, note="checked ticket"
    )

    assert applied.status == BalanceAdjustment.Status.APPLIED
    assert balance_of(user, btc) == (Decimal("2.5"), Decimal(0))
    assert LedgerEntry.objects.get(user=user).reference_id == adjustment.pk
    assert list(
        OperatorAction.objects.filter(target_id=str(adjustment.pk))
        .order_by("id")
        .values_list("action", "actor")
    ) == [("balance_adjust_request", operator.pk), ("balance_adjust_approve", second_operator.pk)]
    with pytest.raises(AdjustmentStateConflict):
        services.balance_adjustment_approve(adjustment_id=adjustment.pk, reviewer=second_operator)
    assert_ledger_ok()


@pytest.mark.django_db
def test_a_debit_is_checked_again_when_approved_and_a_rejection_changes_nothing(
    user, btc, fund, operator, second_operator
):
    fund(user, btc, "1")
    debit = services.balance_adjust(
        user=user, asset=btc, amount=Decimal("-1"), reason="chargeback", operator=operator
    )
    services.withdrawal_request(
        user=user, asset_code="BTC", amount=Decimal("0.5"), address="bc1q"
    )  # the balance moved on since the request

    with pytest.raises(InsufficientBalance):
        services.balance_adjustment_approve(adjustment_id=debit.pk, reviewer=second_operator)
    services.balance_adjustment_reject(
        adjustment_id=debit.pk, reviewer=operator, reason="withdrawn: wrong account"
    )

    assert BalanceAdjustment.objects.get().status == BalanceAdjustment.Status.REJECTED
    assert balance_of(user, btc) == (Decimal("0.4999"), Decimal("0.5001"))
    assert_ledger_ok()


@pytest.mark.django_db
def test_the_limit_lock_takes_any_user_id(btc, fund):
    user = UserFactory(id=2**40 + 7)  # past int4: the lock hashes the id into its key
    fund(user, btc, "1")

    assert _request(user, "0.5").user_id == 2**40 + 7


@pytest.mark.django_db
def test_the_owner_hears_how_each_withdrawal_ended(
    funded, operator, sent_emails, django_capture_on_commit_callbacks
):
    sent = withdrawal_confirm_by_email(_request(funded, "0.1", address="bc1qsent"))
    rejected = withdrawal_confirm_by_email(_request(funded, "0.2", address="bc1qrej"))
    lapsed = _request(funded, "0.3", address="bc1qlapsed")
    Withdrawal.objects.filter(pk=lapsed.pk).update(expires_at=timezone.now())
    sent_emails.clear()

    with django_capture_on_commit_callbacks(execute=True):
        services.withdrawal_approve(withdrawal_id=sent.pk, reviewer=operator)
        services.withdrawal_process(withdrawal_id=sent.pk)
        services.withdrawal_reject(withdrawal_id=rejected.pk, reviewer=operator, reason="mule")
        services.withdrawals_expire_unconfirmed()

    by_subject = {email.subject: email.body for email in sent_emails}
    was_sent = f"Withdrawal #{sent.pk} of 0.10000000 BTC was sent"
    was_rejected = f"Withdrawal #{rejected.pk} of 0.20000000 BTC was rejected"
    has_lapsed = f"Withdrawal #{lapsed.pk} of 0.30000000 BTC expired unconfirmed"
    assert set(by_subject) == {was_sent, was_rejected, has_lapsed}
    assert Withdrawal.objects.get(pk=sent.pk).tx_id in by_subject[was_sent]
    assert "Reason: mule" in by_subject[was_rejected]
    assert "back in your available balance" in by_subject[has_lapsed]
