from celery import shared_task

from accounts.services import token_flush_expired
from accounts.sessions import auth_history_prune


@shared_task(name="accounts.tasks.token_flush_expired_task")
def token_flush_expired_task() -> int:
    """Beat runs this hourly so the token tables do not grow without bound."""
    return token_flush_expired()


@shared_task(name="accounts.tasks.auth_history_prune_task")
def auth_history_prune_task() -> dict[str, int]:
    """Beat runs this daily: old login events and long-ended sessions go."""
    return auth_history_prune()
