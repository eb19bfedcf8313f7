"""The Celery application: tasks are autodiscovered from each app's ``tasks.py``, plus the
modules of ``exchange_site`` (not an app) that define tasks; task outcomes are counted for
/metrics (exchange_site.metrics)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")

# exchange_site is no installed app, so autodiscovery never looks at it: the worker imports
# these modules by name at start-up.
app = Celery("exchange_site", include=["exchange_site.mail"])
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _count(task, outcome: str) -> None:
    # Imported on first use: this module loads before the settings that prometheus-client's
    # multiprocess mode needs (exchange_site/__init__.py imports it).
    from exchange_site.metrics import CELERY_TASKS

    name = getattr(task, "name", None) or "unknown"
    CELERY_TASKS.labels(name, outcome).inc()


@signals.task_success.connect
def _task_succeeded(sender=None, **_kwargs):
    _count(sender, "succeeded")


@signals.task_failure.connect
def _task_failed(sender=None, **_kwargs):
    _count(sender, "failed")


@signals.task_retry.connect
def _task_retried(sender=None, **_kwargs):
    _count(sender, "retried")


@signals.task_revoked.connect
def _task_revoked(sender=None, **_kwargs):
    _count(sender, "revoked")
