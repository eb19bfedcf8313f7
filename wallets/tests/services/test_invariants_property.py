"""A random mix of every money movement keeps ARCHITECTURE §4's invariants after each step.

The machine tracks a simple model (available, locked per account and asset; every
withdrawal's status, its email confirmation, approvals and what it counts against the 24-hour
limit; pending chain deposits) and, after every step, compares it with the database and runs
the full ``ledger_check``. Each example runs in a transaction that is rolled back, so every
example starts from the same clean state.
"""

from collections import defaultdict
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from hypothesis import event
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts.tests.factories import UserFactory
from wallets import services
from wallets.exceptions import (
    AdjustmentStateConflict,
    InsufficientBalance,
    SelfApprovalRefused,
    WithdrawalLimitExceeded,
    WithdrawalNotFound,
    WithdrawalStateConflict,
)
from wallets.ledger_check import ledger_check
from wallets.limits import DEFAULT_TIER
from wallets.models import Balance, BalanceAdjustment, Deposit, LedgerEntry, Withdrawal
from wallets.selectors import fee_account_get
from wallets.tests.factories import AssetFactory
from wallets.tests.helpers import money_state, withdrawal_confirm_by_email

pytestmark = pytest.mark.django_db

ZERO = Decimal(0)
AWAITING, REQUESTED, SECOND = "awaiting_confirmation", "requested", "awaiting_second_approval"
APPROVED, COMPLETED = "approved", "completed"
CANCELLED, REJECTED, EXPIRED = "cancelled", "rejected", "expired"
PENDING, APPLIED = "pending", "applied"  # adjustments (and REJECTED)
# What gave its money back, so no longer counts against the 24-hour limit.
RETURNED = (CANCELLED, REJECTED, EXPIRED)
# Both assets are worth 1 USD (the factory's reference price); the default tier's limit.
DAILY_LIMIT = DEFAULT_TIER["daily_limit"]

users = st.integers(0, 1)
assets = st.integers(0, 1)
# An amount in whole units of the asset's smallest step: 1 step up to a few whole coins.
steps = st.one_of(st.integers(1, 2_000), st.integers(1, 10**9))
picks = st.integers(0, 10**6)  # which existing withdrawal, modulo how many there are


class WalletMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self._settings = override_settings(
            DEMO_DEPOSITS=True,
            DEMO_DEPOSIT_MAX_PER_REQUEST={"*": "100000000"},
            DEMO_DEPOSIT_MAX_PER_DAY={"*": "100000000"},
        )
        self._settings.enable()
        # Two operators, for the four-eyes approvals.
        self.operators = [UserFactory(is_staff=True), UserFactory(is_staff=True)]
        self.operator = self.operators[0]
        self.users = [UserFactory(), UserFactory()]
        self.fee_account = fee_account_get()
        self.assets = [
            # BTC-like: 8 places, a fee, two confirmations.
            AssetFactory(
                precision=8,
                min_withdrawal=Decimal("0.001"),
                withdrawal_fee=Decimal("0.0005"),
                confirmations_required=2,
            ),
            # USD-like: 2 places, no fee, credited at once from the chain.
            AssetFactory(
                precision=2,
                min_withdrawal=Decimal("10"),
                withdrawal_fee=ZERO,
                confirmations_required=0,
            ),
        ]
        # The BTC-like asset needs a second approval over 1 coin; the USD-like one, as every
        # asset the settings do not list, always.
        self._thresholds = override_settings(
            WITHDRAWAL_SECOND_APPROVAL_OVER={"*": "0", self.assets[0].code: "1"}
        )
        self._thresholds.enable()
        self.thresholds = {self.assets[0].pk: Decimal(1), self.assets[1].pk: ZERO}
        self.balances = defaultdict(lambda: [ZERO, ZERO])  # (user_id, asset_id) -> [avail, locked]
        # id -> {"key", "user", "amount", "total", "fee", "status", "confirmed", "second",
        # "first_approver"}
        self.withdrawals = {}
        self.pending = {}  # deposit id -> [key, amount, confirmations, required]
        self.adjustments = {}  # id -> {"key", "amount", "status"}
        self.ledger_entries = LedgerEntry.objects.count()
        self.deposits = Deposit.objects.count()
        # Start with money, so withdrawals succeed from the first step on.
        for user in self.users:
            for asset in self.assets:
                self.deposit_demo(self.users.index(user), self.assets.index(asset), 10**9)

    def teardown(self):
        if hasattr(self, "_atomic"):
            if hasattr(self, "_thresholds"):
                self._thresholds.disable()
            self._settings.disable()
            transaction.set_rollback(True)
            self._atomic.__exit__(None, None, None)

    # --- helpers ------------------------------------------------------------------------

    def amount(self, asset, units):
        return Decimal(units).scaleb(-asset.precision)

    def credit(self, key, amount):
        self.balances[key][0] += amount
        self.ledger_entries += 1

    def pick(self, index):
        ids = sorted(self.withdrawals)
        return ids[index % len(ids)]

    def limit_used(self, user):
        """What ``user``'s withdrawals count against the 24-hour limit, in USD."""
        counting = [
            model["amount"]
            for model in self.withdrawals.values()
            if model["user"] == user and model["status"] not in RETURNED
        ]
        return sum(counting, ZERO)

    def refused(self, expected, call):
        before = money_state()
        with pytest.raises(expected):
            call()
        assert money_state() == before

    # --- deposits -----------------------------------------------------------------------

    @rule(u=users, a=assets, units=steps)
    def deposit_demo(self, u, a, units):
        user, asset = self.users[u], self.assets[a]
        amount = self.amount(asset, units)
        services.deposit_demo_create(user=user, asset_code=asset.code, amount=amount)
        self.deposits += 1
        self.credit((user.pk, asset.pk), amount)

    @rule(u=users, a=assets, units=steps)
    def deposit_from_chain(self, u, a, units):
        user, asset = self.users[u], self.assets[a]
        amount = self.amount(asset, units)
        address = services.deposit_address_get_or_create(user=user, asset_code=asset.code)
        deposit = services.deposit_chain_detect(address=address.address, amount=amount)
        self.deposits += 1
        if asset.confirmations_required == 0:
            assert deposit.status == Deposit.Status.CONFIRMED
            self.credit((user.pk, asset.pk), amount)
        else:
            assert deposit.status == Deposit.Status.PENDING
            self.pending[deposit.pk] = [
                (user.pk, asset.pk),
                amount,
                0,
                asset.confirmations_required,
            ]

    @rule()
    def mine_block(self):
        expected = 0
        for deposit_id, entry in list(self.pending.items()):
            entry[2] += 1
            if entry[2] >= entry[3]:
                event("chain deposit confirmed")
                self.credit(entry[0], entry[1])
                del self.pending[deposit_id]
                expected += 1
        assert services.chain_block_mine() == expected

    # --- withdrawals --------------------------------------------------------------------

    @rule(u=users, a=assets, units=steps, confirm=st.booleans())
    def withdraw(self, u, a, units, confirm):
        asset = self.assets[a]
        self.request_withdrawal(self.users[u], asset, self.amount(asset, units), confirm)

    @rule(u=users, a=assets, percent=st.integers(1, 110), confirm=st.booleans())
    def withdraw_share_of_available(self, u, a, percent, confirm):
        """Around the edge: up to all that is available (after the fee), and a bit more."""
        user, asset = self.users[u], self.assets[a]
        spendable = self.balances[(user.pk, asset.pk)][0] - asset.withdrawal_fee
        amount = (spendable * percent / 100).quantize(asset.quantum, rounding=ROUND_DOWN)
        if amount > 0:
            self.request_withdrawal(user, asset, amount, confirm)

    def request_withdrawal(self, user, asset, amount, confirm):
        """Request it; with ``confirm``, its owner follows the emailed link at once."""
        key = (user.pk, asset.pk)
        total = amount + asset.withdrawal_fee

        def call():
            return services.withdrawal_request(
                user=user, asset_code=asset.code, amount=amount, address="sim-out"
            )

        if amount < asset.min_withdrawal:
            event("withdrawal under the minimum")
            self.refused(ValidationError, call)
        elif self.balances[key][0] < total:
            event("withdrawal over the balance")
            self.refused(InsufficientBalance, call)
        elif amount > DAILY_LIMIT - self.limit_used(user):
            event("withdrawal over the 24-hour limit")
            self.refused(WithdrawalLimitExceeded, call)
        else:
            event("withdrawal requested")
            withdrawal = call()
            self.balances[key][0] -= total
            self.balances[key][1] += total
            self.ledger_entries += 1
            self.withdrawals[withdrawal.pk] = {
                "key": key,
                "user": user,
                "amount": amount,
                "total": total,
                "fee": asset.withdrawal_fee,
                "status": AWAITING,
                "confirmed": False,
                "second": amount > self.thresholds[asset.pk],
                "first_approver": None,
            }
            assert withdrawal.needs_second_approval == self.withdrawals[withdrawal.pk]["second"]
            if confirm:
                self.confirm_by_email(sorted(self.withdrawals).index(withdrawal.pk))

    @precondition(lambda self: self.withdrawals)
    @rule(pick=picks)
    def confirm_by_email(self, pick):
        withdrawal_id = self.pick(pick)
        model = self.withdrawals[withdrawal_id]

        def call():
            return withdrawal_confirm_by_email(Withdrawal.objects.get(pk=withdrawal_id))

        event(f"confirmation of a {model['status']} withdrawal")
        if model["status"] == AWAITING:
            call()
            model["status"], model["confirmed"] = REQUESTED, True
        elif model["confirmed"]:
            before = money_state()
            assert call().status == model["status"]  # a second click changes nothing
            assert money_state() == before
        else:
            self.refused(WithdrawalStateConflict, call)

    @rule()
    def expire_unconfirmed(self):
        later = timezone.now() + timedelta(seconds=settings.WITHDRAWAL_CONFIRM_SECONDS + 1)
        due = [m for m in self.withdrawals.values() if m["status"] == AWAITING]
        for model in due:
            self.release(model)
            model["status"] = EXPIRED
        assert services.withdrawals_expire_unconfirmed(now=later) == len(due)

    def release(self, model):
        self.balances[model["key"]][0] += model["total"]
        self.balances[model["key"]][1] -= model["total"]
        self.ledger_entries += 1

    @precondition(lambda self: self.withdrawals)
    @rule(pick=picks, as_stranger=st.booleans())
    def cancel(self, pick, as_stranger):
        withdrawal_id = self.pick(pick)
        model = self.withdrawals[withdrawal_id]
        owner = model["user"]
        user = next(u for u in self.users if u != owner) if as_stranger else owner

        def call():
            return services.withdrawal_cancel(user=user, withdrawal_id=withdrawal_id)

        event(
            f"cancel of a {model['status']} withdrawal" + (" by a stranger" if as_stranger else "")
        )
        if as_stranger:
            self.refused(WithdrawalNotFound, call)
        elif model["status"] not in (AWAITING, REQUESTED, SECOND):
            self.refused(WithdrawalStateConflict, call)
        else:
            call()
            self.release(model)
            model["status"] = CANCELLED

    @precondition(lambda self: self.withdrawals)
    @rule(pick=picks, o=st.integers(0, 1))
    def approve(self, pick, o):
        withdrawal_id = self.pick(pick)
        model = self.withdrawals[withdrawal_id]
        reviewer = self.operators[o]

        def call():
            return services.withdrawal_approve(withdrawal_id=withdrawal_id, reviewer=reviewer)

        event(f"approval of a {model['status']} withdrawal")
        if model["status"] not in (REQUESTED, SECOND):
            self.refused(WithdrawalStateConflict, call)
        elif model["status"] == SECOND and model["first_approver"] == reviewer:
            self.refused(SelfApprovalRefused, call)
        elif model["status"] == REQUESTED and model["second"]:
            call()
            model["status"], model["first_approver"] = SECOND, reviewer
        else:
            call()
            model["status"] = APPROVED

    @precondition(lambda self: self.withdrawals)
    @rule(pick=picks)
    def reject(self, pick):
        withdrawal_id = self.pick(pick)
        model = self.withdrawals[withdrawal_id]

        def call():
            return services.withdrawal_reject(
                withdrawal_id=withdrawal_id, reviewer=self.operator, reason="risk"
            )

        event(f"rejection of a {model['status']} withdrawal")
        if model["status"] not in (REQUESTED, SECOND, APPROVED):
            self.refused(WithdrawalStateConflict, call)
        else:
            call()
            self.release(model)
            model["status"] = REJECTED

    def complete(self, model):
        self.balances[model["key"]][1] -= model["total"]
        self.ledger_entries += 1
        if model["fee"]:
            asset_id = model["key"][1]
            self.balances[(self.fee_account.pk, asset_id)][0] += model["fee"]
            self.ledger_entries += 2
        model["status"] = COMPLETED

    @precondition(lambda self: self.withdrawals)
    @rule(pick=picks)
    def process_twice(self, pick):
        withdrawal_id = self.pick(pick)
        model = self.withdrawals[withdrawal_id]
        event(f"processing of a {model['status']} withdrawal")
        if model["status"] == APPROVED:
            self.complete(model)
        for _ in range(2):
            done = services.withdrawal_process(withdrawal_id=withdrawal_id)
            assert done.status == model["status"]

    @rule()
    def process_pending_twice(self):
        approved = [m for m in self.withdrawals.values() if m["status"] == APPROVED]
        for model in approved:
            self.complete(model)
        assert services.withdrawals_process_pending() == len(approved)
        assert services.withdrawals_process_pending() == 0

    # --- operators ----------------------------------------------------------------------

    @rule(u=users, a=assets, units=steps, debit=st.booleans())
    def adjust(self, u, a, units, debit):
        """The first operator asks for an adjustment: nothing moves until it is approved."""
        user, asset = self.users[u], self.assets[a]
        amount = self.amount(asset, units) * (-1 if debit else 1)
        event("adjustment requested")
        adjustment = services.balance_adjust(
            user=user, asset=asset, amount=amount, reason="ops", operator=self.operators[0]
        )
        self.adjustments[adjustment.pk] = {
            "key": (user.pk, asset.pk),
            "amount": amount,
            "status": PENDING,
        }

    @precondition(lambda self: self.adjustments)
    @rule(pick=picks, approve=st.booleans(), o=st.integers(0, 1))
    def review_adjustment(self, pick, approve, o):
        """An operator approves (never the one who asked) or rejects (anyone) one."""
        ids = sorted(self.adjustments)
        adjustment_id = ids[pick % len(ids)]
        model = self.adjustments[adjustment_id]
        reviewer = self.operators[o]
        key = model["key"]

        def call():
            if approve:
                return services.balance_adjustment_approve(
                    adjustment_id=adjustment_id, reviewer=reviewer
                )
            return services.balance_adjustment_reject(
                adjustment_id=adjustment_id, reviewer=reviewer, reason="no"
            )

        action = "approval" if approve else "rejection"
        event(f"{action} of a {model['status']} adjustment")
        if model["status"] != PENDING:
            self.refused(AdjustmentStateConflict, call)
        elif approve and reviewer == self.operators[0]:
            self.refused(SelfApprovalRefused, call)
        elif approve and self.balances[key][0] + model["amount"] < 0:
            event("debit over the balance")
            self.refused(InsufficientBalance, call)
        elif approve:
            call()
            self.credit(key, model["amount"])
            model["status"] = APPLIED
        else:
            call()
            model["status"] = REJECTED

    # --- after every step ---------------------------------------------------------------

    @invariant()
    def ledger_check_passes(self):
        report = ledger_check()
        assert report.ok, report.violations

    @invariant()
    def database_matches_the_model(self):
        stored = {
            (user_id, asset_id): [available, locked]
            for user_id, asset_id, available, locked in Balance.objects.filter(
                asset__in=self.assets
            ).values_list("user_id", "asset_id", "available", "locked")
        }
        expected = {key: value for key, value in self.balances.items() if value != [ZERO, ZERO]}
        assert {k: v for k, v in stored.items() if v != [ZERO, ZERO]} == expected
        assert LedgerEntry.objects.count() == self.ledger_entries
        assert Deposit.objects.count() == self.deposits
        assert dict(Withdrawal.objects.values_list("pk", "status")) == {
            pk: model["status"] for pk, model in self.withdrawals.items()
        }
        assert dict(BalanceAdjustment.objects.values_list("pk", "status")) == {
            pk: model["status"] for pk, model in self.adjustments.items()
        }


def test_random_money_movements_keep_every_invariant():
    run_state_machine_as_test(
        WalletMachine,
        settings=hypothesis_settings(max_examples=30, stateful_step_count=25, deadline=None),
    )
