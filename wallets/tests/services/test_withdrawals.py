from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts.tests.factories import UserFactory
from wallets import chain, services
from wallets.exceptions import (
    AssetInactive,
    InsufficientBalance,
    WithdrawalNotFound,
    WithdrawalStateConflict,
)
from wallets.models import Asset, LedgerEntry, LedgerKind, Withdrawal
from wallets.selectors import fee_account_get
from wallets.tasks import withdrawal_process_task
from wallets.tests.factories import AssetFactory
from wallets.tests.helpers import (
    assert_ledger_ok,
    balance_of,
    money_state,
    withdrawal_confirm_by_email,
)

pytestmark = pytest.mark.django_db

ADDRESS = "sim-external-address-1"


@pytest.fixture
def funded(user, btc, fund):
    fund(user, btc, "1")
    return user


def request(user, amount="0.4", asset_code="BTC", address=ADDRESS, confirm=True):
    """A withdrawal request, confirmed from its email (so in review) unless ``confirm`` is
    False."""
    withdrawal = services.withdrawal_request(
        user=user, asset_code=asset_code, amount=Decimal(amount), address=address
    )
    return withdrawal_confirm_by_email(withdrawal) if confirm else withdrawal


# --- request ------------------------------------------------------------------------------


def test_withdrawal_request_reserves_amount_plus_fee(funded, btc):
    withdrawal = request(funded, "0.4", confirm=False)

    assert withdrawal.status == Withdrawal.Status.AWAITING_CONFIRMATION
    assert (withdrawal.amount, withdrawal.fee) == (Decimal("0.4"), Decimal("0.0001"))
    assert balance_of(funded, btc) == (Decimal("0.5999"), Decimal("0.4001"))
    entry = LedgerEntry.objects.filter(user=funded).first()  # newest first
    assert (entry.kind, entry.reference_type, entry.reference_id) == (
        LedgerKind.WITHDRAWAL,
        "withdrawal",
        withdrawal.pk,
    )
    assert (entry.available_delta, entry.locked_delta) == (Decimal("-0.4001"), Decimal("0.4001"))
    assert_ledger_ok()
    # Confirming it from the email puts it in review and moves no money.
    before = money_state()
    assert withdrawal_confirm_by_email(withdrawal).status == Withdrawal.Status.REQUESTED
    assert money_state() == before


def test_withdrawal_request_may_use_the_whole_available_balance(funded, btc):
    request(funded, "0.9999")

    assert balance_of(funded, btc) == (Decimal(0), Decimal(1))
    assert_ledger_ok()


def test_withdrawal_request_refuses_more_than_available_with_required_and_available(funded):
    before = money_state()

    with pytest.raises(InsufficientBalance) as caught:
        request(funded, "1")  # 1 + fee 0.0001 > 1

    assert caught.value.details == {
        "asset": "BTC",
        "required": "1.00010000",
        "available": "1.00000000",
    }
    assert money_state() == before


def test_withdrawal_request_refuses_a_user_who_never_held_the_asset(user, btc):
    before = money_state()

    with pytest.raises(InsufficientBalance) as caught:
        request(user, "0.1")

    assert caught.value.details["available"] == "0.00000000"
    assert money_state() == before


def test_withdrawal_request_refuses_an_amount_below_the_minimum(funded):
    before = money_state()

    with pytest.raises(ValidationError) as caught:
        request(funded, "0.00009999")

    assert "minimum" in caught.value.message_dict["amount"][0]
    assert money_state() == before


@pytest.mark.parametrize(
    "amount",
    [
        "0",
        "-0.5",
        "0.000000001",
        "NaN",
        "-Infinity",
        "1e18",
        "1e1000000",
        "1.0000000000000000000000001",
    ],
)
def test_withdrawal_request_refuses_a_bad_amount(funded, amount):
    before = money_state()

    with pytest.raises(ValidationError) as caught:
        request(funded, amount)

    assert "amount" in caught.value.message_dict
    assert money_state() == before


def test_withdrawal_request_of_a_huge_valid_amount_is_insufficient_not_a_crash(funded):
    before = money_state()

    with pytest.raises(InsufficientBalance) as caught:
        request(funded, "99999999999999999.99999999")

    assert caught.value.details["required"] == "100000000000000000.00009999"
    assert money_state() == before


@pytest.mark.parametrize("address", ["", "x" * 129, "bad\naddress", "bad\x00address", 42])
def test_withdrawal_request_refuses_a_bad_address(funded, address):
    before = money_state()

    with pytest.raises(ValidationError) as caught:
        request(funded, address=address)

    assert "address" in caught.value.message_dict
    assert money_state() == before


def test_withdrawal_request_accepts_a_128_character_address(funded):
    assert request(funded, address="a" * 128).address == "a" * 128


def test_withdrawal_request_refuses_an_inactive_asset(funded, btc):
    Asset.objects.filter(pk=btc.pk).update(is_active=False)
    before = money_state()

    with pytest.raises(AssetInactive):
        request(funded)

    assert money_state() == before


def test_withdrawal_request_of_a_user_whose_id_is_past_32_bits(btc, fund):
    """Ids are 64-bit (BigAutoField): the limit's per-account lock must take any of them."""
    big = UserFactory(id=2**31)
    fund(big, btc, "1")

    withdrawal = request(big, "0.4", confirm=False)

    assert withdrawal.status == Withdrawal.Status.AWAITING_CONFIRMATION
    assert balance_of(big, btc) == (Decimal("0.5999"), Decimal("0.4001"))


# --- cancel -------------------------------------------------------------------------------


def test_withdrawal_cancel_releases_the_reserve(funded, btc):
    withdrawal = request(funded, "0.4")

    cancelled = services.withdrawal_cancel(user=funded, withdrawal_id=withdrawal.pk)

    assert cancelled.status == Withdrawal.Status.CANCELLED
    assert balance_of(funded, btc) == (Decimal(1), Decimal(0))
    assert_ledger_ok()


def test_withdrawal_cancel_twice_is_a_conflict_and_changes_nothing(funded):
    withdrawal = request(funded)
    services.withdrawal_cancel(user=funded, withdrawal_id=withdrawal.pk)
    before = money_state()

    with pytest.raises(WithdrawalStateConflict) as caught:
        services.withdrawal_cancel(user=funded, withdrawal_id=withdrawal.pk)

    assert caught.value.details == {"status": "cancelled"}
    assert money_state() == before


def test_withdrawal_cancel_of_another_users_withdrawal_is_not_found(funded, other_user):
    withdrawal = request(funded)
    before = money_state()

    with pytest.raises(WithdrawalNotFound):
        services.withdrawal_cancel(user=other_user, withdrawal_id=withdrawal.pk)

    assert money_state() == before
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == Withdrawal.Status.REQUESTED


def test_withdrawal_cancel_after_approval_is_a_conflict(funded, operator):
    withdrawal = request(funded)
    services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)
    before = money_state()

    with pytest.raises(WithdrawalStateConflict):
        services.withdrawal_cancel(user=funded, withdrawal_id=withdrawal.pk)

    assert money_state() == before


# --- approve and process ------------------------------------------------------------------


def test_withdrawal_approve_keeps_the_reserve_and_queues_processing_after_commit(
    funded, btc, operator, django_capture_on_commit_callbacks
):
    withdrawal = request(funded, "0.4")

    with django_capture_on_commit_callbacks() as callbacks:
        approved = services.withdrawal_approve(
            withdrawal_id=withdrawal.pk, reviewer=operator, note="looks fine"
        )

    assert approved.status == Withdrawal.Status.APPROVED
    assert (approved.reviewed_by, approved.review_note) == (operator, "looks fine")
    assert approved.reviewed_at is not None
    assert balance_of(funded, btc) == (Decimal("0.5999"), Decimal("0.4001"))
    assert len(callbacks) == 1
    assert_ledger_ok()


def test_withdrawal_approve_twice_is_a_conflict(funded, operator):
    withdrawal = request(funded)
    services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)
    before = money_state()

    with pytest.raises(WithdrawalStateConflict):
        services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)

    assert money_state() == before


def test_withdrawal_approve_of_an_unknown_withdrawal_is_not_found(operator):
    with pytest.raises(WithdrawalNotFound):
        services.withdrawal_approve(withdrawal_id=987654321, reviewer=operator)


def test_withdrawal_process_pays_out_and_credits_the_fee_account(funded, btc, operator):
    withdrawal = request(funded, "0.4")
    services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)
    fee_account = fee_account_get()

    done = services.withdrawal_process(withdrawal_id=withdrawal.pk)

    assert done.status == Withdrawal.Status.COMPLETED
    assert done.tx_id.startswith("simtx-")
    assert done.completed_at is not None
    assert balance_of(funded, btc) == (Decimal("0.5999"), Decimal(0))
    assert balance_of(fee_account, btc) == (Decimal("0.0001"), Decimal(0))
    kinds = sorted(
        LedgerEntry.objects.filter(reference_type="withdrawal", reference_id=withdrawal.pk)
        .exclude(locked_delta__gt=0)
        .values_list("kind", flat=True)
    )
    assert kinds == ["withdrawal", "withdrawal_fee", "withdrawal_fee"]
    report = services.ledger_check()
    assert report.ok, report.violations
    assert report.assets["BTC"]["held"] == "0.6"
    assert report.assets["BTC"]["withdrawn"] == "0.4"


def test_withdrawal_process_task_completes_an_approved_withdrawal(funded, btc, operator):
    withdrawal = request(funded, "0.4")
    services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)

    assert withdrawal_process_task.apply(args=[withdrawal.pk]).get() == "completed"

    assert balance_of(funded, btc) == (Decimal("0.5999"), Decimal(0))
    assert balance_of(fee_account_get(), btc) == (Decimal("0.0001"), Decimal(0))
    assert_ledger_ok()


def test_withdrawal_process_twice_never_pays_twice(funded, btc, operator):
    withdrawal = request(funded, "0.4")
    services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)
    services.withdrawal_process(withdrawal_id=withdrawal.pk)
    after_first = money_state()
    tx_id = Withdrawal.objects.get(pk=withdrawal.pk).tx_id

    again = services.withdrawal_process(withdrawal_id=withdrawal.pk)

    assert again.status == Withdrawal.Status.COMPLETED
    assert again.tx_id == tx_id
    assert money_state() == after_first
    assert_ledger_ok()


def test_withdrawals_process_pending_twice_completes_each_once(
    user, other_user, btc, fund, operator
):
    fund(user, btc, "1")
    fund(other_user, btc, "1")
    first = request(user, "0.1")
    second = request(other_user, "0.2")
    untouched = request(user, "0.3")  # never approved
    for withdrawal in (first, second):
        services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)

    assert services.withdrawals_process_pending() == 2
    after_first = money_state()
    assert services.withdrawals_process_pending() == 0

    assert money_state() == after_first
    assert Withdrawal.objects.get(pk=untouched.pk).status == Withdrawal.Status.REQUESTED
    assert balance_of(fee_account_get(), btc) == (Decimal("0.0002"), Decimal(0))
    assert_ledger_ok()


def test_withdrawals_process_pending_finishes_a_stuck_processing_withdrawal(funded, btc, operator):
    withdrawal = request(funded, "0.4")
    services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)
    chain._withdrawal_broadcast(withdrawal_id=withdrawal.pk)  # crashed before completing
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == Withdrawal.Status.PROCESSING
    assert_ledger_ok()

    assert services.withdrawals_process_pending() == 1

    assert Withdrawal.objects.get(pk=withdrawal.pk).status == Withdrawal.Status.COMPLETED
    assert balance_of(funded, btc) == (Decimal("0.5999"), Decimal(0))
    assert_ledger_ok()


@pytest.mark.parametrize("end", ["requested", "cancelled", "rejected"])
def test_withdrawal_process_does_nothing_unless_approved(funded, operator, end):
    withdrawal = request(funded)
    if end == "cancelled":
        services.withdrawal_cancel(user=funded, withdrawal_id=withdrawal.pk)
    elif end == "rejected":
        services.withdrawal_reject(withdrawal_id=withdrawal.pk, reviewer=operator, reason="no")
    before = money_state()

    assert services.withdrawal_process(withdrawal_id=withdrawal.pk).status == end

    assert money_state() == before


def test_withdrawal_of_an_asset_without_fee_pays_nothing_to_the_fee_account(
    user, fund, operator, settings
):
    free = AssetFactory(withdrawal_fee=Decimal(0))
    # One approval pays it out (unlisted assets need two by default: not this test's subject).
    settings.WITHDRAWAL_SECOND_APPROVAL_OVER = {"*": "0", free.code: "10"}
    fund(user, free, "2")
    withdrawal = request(user, "1.5", asset_code=free.code)
    services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)

    services.withdrawal_process(withdrawal_id=withdrawal.pk)

    assert balance_of(user, free) == (Decimal("0.5"), Decimal(0))
    assert balance_of(fee_account_get(), free) == (Decimal(0), Decimal(0))
    assert not LedgerEntry.objects.filter(kind=LedgerKind.WITHDRAWAL_FEE).exists()
    assert_ledger_ok()


# --- reject -------------------------------------------------------------------------------


@pytest.mark.parametrize("approved_first", [False, True])
def test_withdrawal_reject_releases_the_reserve(funded, btc, operator, approved_first):
    withdrawal = request(funded, "0.4")
    if approved_first:
        services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)

    rejected = services.withdrawal_reject(
        withdrawal_id=withdrawal.pk, reviewer=operator, reason="  address on a sanctions list "
    )

    assert rejected.status == Withdrawal.Status.REJECTED
    assert rejected.review_note == "address on a sanctions list"
    assert balance_of(funded, btc) == (Decimal(1), Decimal(0))
    assert_ledger_ok()
    # A rejected withdrawal is never paid, even if its processing task runs late.
    services.withdrawal_process(withdrawal_id=withdrawal.pk)
    assert balance_of(funded, btc) == (Decimal(1), Decimal(0))


@pytest.mark.parametrize("reason", ["", "   "])
def test_withdrawal_reject_needs_a_reason(funded, operator, reason):
    withdrawal = request(funded)
    before = money_state()

    with pytest.raises(ValidationError):
        services.withdrawal_reject(withdrawal_id=withdrawal.pk, reviewer=operator, reason=reason)

    assert money_state() == before
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == Withdrawal.Status.REQUESTED


@pytest.mark.parametrize("end", ["completed", "cancelled", "rejected"])
def test_withdrawal_reject_once_it_is_done_is_a_conflict(funded, operator, end):
    withdrawal = request(funded)
    if end == "completed":
        services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)
        services.withdrawal_process(withdrawal_id=withdrawal.pk)
    elif end == "cancelled":
        services.withdrawal_cancel(user=funded, withdrawal_id=withdrawal.pk)
    else:
        services.withdrawal_reject(withdrawal_id=withdrawal.pk, reviewer=operator, reason="no")
    before = money_state()

    with pytest.raises(WithdrawalStateConflict):
        services.withdrawal_reject(withdrawal_id=withdrawal.pk, reviewer=operator, reason="late")

    assert money_state() == before
