from celery import shared_task

from trading.services.fees import fee_volumes_refresh


@shared_task(name="trading.tasks.fee_volumes_refresh_task")
def fee_volumes_refresh_task() -> int:
    """Daily: every account's 30-day traded volume, which places it in the fee schedule."""
    return fee_volumes_refresh()
