from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.services import auth_logout, auth_tokens_issue, token_flush_expired
from accounts.tasks import token_flush_expired_task
from exchange_site.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_token_flush_expired_deletes_only_expired_tokens(user):
    auth_tokens_issue(user=user)
    expired = auth_tokens_issue(user=user)
    auth_logout(refresh_token=expired["refresh_token"])
    OutstandingToken.objects.filter(token=expired["refresh_token"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert token_flush_expired() == 1

    assert OutstandingToken.objects.count() == 1
    assert BlacklistedToken.objects.count() == 0


def test_token_flush_is_on_the_beat_schedule():
    schedule = celery_app.conf.beat_schedule

    assert any(entry["task"] == token_flush_expired_task.name for entry in schedule.values()), (
        schedule
    )


@pytest.mark.django_db(transaction=True)
def test_token_flush_task_runs_on_a_real_worker(user):
    from celery.contrib.testing.worker import start_worker

    token = auth_tokens_issue(user=user)["refresh_token"]
    OutstandingToken.objects.filter(token=token).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        deleted = token_flush_expired_task.delay().get(timeout=20)

    assert deleted == 1
    assert OutstandingToken.objects.count() == 0
