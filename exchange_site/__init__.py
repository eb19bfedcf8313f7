from exchange_site.decimals import install_money_context

install_money_context()

from exchange_site.celery import app as celery_app  # noqa: E402

__all__ = ("celery_app",)
