from celery import shared_task

from wallets import chain
from wallets.ledger_check import ledger_check_run
from wallets.liabilities import liability_snapshot_take


@shared_task(
    name="wallets.tasks.withdrawal_process_task",
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
)
def withdrawal_process_task(withdrawal_id: int) -> str:
    """Started on approval; the periodic sweep below catches anything this misses."""
    return chain.withdrawal_process(withdrawal_id=withdrawal_id).status


@shared_task(name="wallets.tasks.withdrawals_process_pending_task")
def withdrawals_process_pending_task() -> int:
    return chain.withdrawals_process_pending()


@shared_task(name="wallets.tasks.chain_block_mine_task")
def chain_block_mine_task() -> int:
    return chain.chain_block_mine()


@shared_task(name="wallets.tasks.ledger_check_task")
def ledger_check_task() -> bool:
    return ledger_check_run().ok


@shared_task(name="wallets.tasks.withdrawals_expire_unconfirmed_task")
def withdrawals_expire_unconfirmed_task() -> int:
    """Every minute: requests not confirmed from their email in time release their funds."""
    return chain.withdrawals_expire_unconfirmed()


@shared_task(name="wallets.tasks.liability_snapshot_take_task")
def liability_snapshot_take_task() -> int:
    """Beat's daily snapshot (LIABILITY_SNAPSHOT_HOUR/MINUTE); returns the snapshot's id."""
    return liability_snapshot_take().snapshot.pk
