"""``manage.py run_mailcatcher [--host H] [--port P] [--directory D]``: the local SMTP server
of ``make run`` that keeps every email in a Maildir (read at /dev/mailbox/ in demo mode).

It lives in ``accounts`` only because ``exchange_site`` is no app; the server is
``exchange_site.mailcatcher``.
"""

import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from exchange_site.mailcatcher import MailCatcherError, mailcatcher_run


class Command(BaseCommand):
    help = "Run a local SMTP server that stores every message in MAILBOX_DIR (a Maildir)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--port", type=int, default=None, help="Default: MAILCATCHER_PORT, else EMAIL_PORT."
        )
        parser.add_argument("--directory", default=None, help="Default: MAILBOX_DIR.")

    def handle(self, *args, host, port, directory, **options):
        logging.getLogger("exchange_site.mailcatcher").setLevel(logging.INFO)
        try:
            mailcatcher_run(
                directory=directory or settings.MAILBOX_DIR,
                host=host,
                port=port or settings.MAILCATCHER_PORT,
            )
        except MailCatcherError as exc:
            raise CommandError(str(exc)) from exc
