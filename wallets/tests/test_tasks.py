import time
from decimal import Decimal

import pytest

from exchange_site.celery import app as celery_app
from wallets import services, tasks
from wallets.models import LedgerCheckRun, Withdrawal
from wallets.selectors import fee_account_get
from wallets.tests.helpers import assert_ledger_ok, balance_of, withdrawal_request_confirmed


@pytest.mark.parametrize(
    "task",
    [tasks.chain_block_mine_task, tasks.withdrawals_process_pending_task, tasks.ledger_check_task],
)
def test_periodic_wallet_tasks_are_on_the_beat_schedule(task):
    scheduled = {entry["task"] for entry in celery_app.conf.beat_schedule.values()}

    assert task.name in scheduled
    assert task.name in celery_app.tasks


@pytest.mark.django_db
def test_ledger_check_task_stores_a_run(user, btc, fund):
    fund(user, btc, "1")

    assert tasks.ledger_check_task() is True

    assert LedgerCheckRun.objects.get().ok is True


@pytest.mark.django_db
def test_chain_block_mine_task_confirms_ready_deposits(user, usd, btc):
    address = services.deposit_address_get_or_create(user=user, asset_code="BTC").address
    services.deposit_chain_detect(address=address, amount=Decimal(1))

    assert tasks.chain_block_mine_task() == 0
    assert tasks.chain_block_mine_task() == 1

    assert balance_of(user, btc) == (Decimal(1), Decimal(0))


@pytest.mark.django_db(transaction=True)
def test_approved_withdrawal_is_completed_by_a_real_worker(user, btc, fund, operator):
    from celery.contrib.testing.worker import start_worker

    fund(user, btc, "1")
    withdrawal = withdrawal_request_confirmed(
        user=user, asset_code="BTC", amount=Decimal("0.4"), address="sim-out"
    )

    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        # Approval queues withdrawal_process_task once its transaction commits.
        services.withdrawal_approve(withdrawal_id=withdrawal.pk, reviewer=operator)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            withdrawal.refresh_from_db()
            if withdrawal.status == Withdrawal.Status.COMPLETED:
                break
            time.sleep(0.05)
        assert withdrawal.status == Withdrawal.Status.COMPLETED
        # Sent again, as a retry would be: the worker must not pay twice.
        assert tasks.withdrawal_process_task.delay(withdrawal.pk).get(timeout=20) == "completed"

    assert balance_of(user, btc) == (Decimal("0.5999"), Decimal(0))
    assert balance_of(fee_account_get(), btc) == (Decimal("0.0001"), Decimal(0))
    assert_ledger_ok()
