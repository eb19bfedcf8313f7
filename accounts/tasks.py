from celery import shared_task

from accounts.services import token_flush_expired


@shared_task(name="accounts.tasks.token_flush_expired_task")
def token_flush_expired_task() -> int:
    """Beat runs this hourly so the token tables do not grow without bound."""
    return token_flush_expired()
