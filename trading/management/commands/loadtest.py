"""``manage.py loadtest``: drive the running exchange's order API over HTTP (bench/loadtest.py)."""

import sys

from django.core.management.base import BaseCommand, CommandError

from bench import loadtest


class Command(BaseCommand):
    help = loadtest.__doc__.split("\n\n")[0]

    def add_arguments(self, parser):
        loadtest.add_arguments(parser)

    def handle(self, *args, **options):
        try:
            code = loadtest.run(options, out=self.stdout)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if code:
            # The table and the JSON line are out; the exit status tells a script the rest.
            sys.exit(code)
