"""``manage.py run_marketmaker``: a demo market maker and taker that keep the markets alive."""

import logging

from django.core.management.base import BaseCommand, CommandError

from trading.marketmaker import MarketMaker


class Command(BaseCommand):
    help = (
        "Quote a two-sided ladder around a random-walk price in each market and trade against "
        "it at random; both bots are ordinary, deposit-funded users. Ctrl-C or SIGTERM cancels "
        "their orders and stops."
    )

    def add_arguments(self, parser):
        parser.add_argument("--markets", default="", help="Comma-separated symbols (all if empty).")
        parser.add_argument(
            "--spread-bps", type=int, default=10, help="Best bid to best ask, in basis points."
        )
        parser.add_argument(
            "--step-bps", type=int, default=5, help="Distance between levels, in basis points."
        )
        parser.add_argument("--levels", type=int, default=10, help="Levels on each side.")
        parser.add_argument(
            "--interval", type=float, default=1.0, help="Seconds between re-quotes of a market."
        )
        parser.add_argument(
            "--volatility-bps",
            type=float,
            default=3.0,
            help="Standard deviation of the reference price's step per interval.",
        )
        parser.add_argument(
            "--taker-interval",
            type=float,
            default=2.0,
            help="Mean seconds between taker orders; 0 turns the taker off.",
        )
        parser.add_argument("--seed", type=int, default=None, help="Random seed (repeatable runs).")

    def handle(self, *args, **options):
        logging.getLogger("trading.marketmaker").setLevel(logging.INFO)
        symbols = [s.strip() for s in options["markets"].split(",") if s.strip()] or None
        try:
            maker = MarketMaker(
                symbols=symbols,
                spread_bps=options["spread_bps"],
                step_bps=options["step_bps"],
                levels=options["levels"],
                interval=options["interval"],
                volatility_bps=options["volatility_bps"],
                taker_interval=options["taker_interval"] or None,
                seed=options["seed"],
            )
            maker.install_signal_handlers()
            maker.run()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
