"""What the matcher tells Prometheus (exchange_site.metrics) and the debug log.

Per batch: its size and the time it took to run and commit, into histograms (a couple of
memory-mapped writes, no I/O). The backlog (pending commands and the age of the oldest)
takes a query, so it is read at most every ``BACKLOG_INTERVAL`` seconds, over the pending
commands' partial index.
"""

import logging
import os
import time

from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone

from exchange_site.metrics import (
    MATCHER_BATCH_COMMANDS,
    MATCHER_BATCH_SECONDS,
    MATCHER_LAG,
    MATCHER_PENDING,
    process_exited,
)
from trading.models import OrderCommand

logger = logging.getLogger("trading.matcher")

BACKLOG_INTERVAL = 1.0


class MatcherMetrics:
    def __init__(self):
        self._children: dict[str, tuple] = {}
        self._backlog_due = 0.0

    def _for(self, symbol: str) -> tuple:
        children = self._children.get(symbol)
        if children is None:
            children = self._children[symbol] = (
                MATCHER_BATCH_COMMANDS.labels(symbol),
                MATCHER_BATCH_SECONDS.labels(symbol),
            )
        return children

    def batch_done(self, matcher, result, seconds: float) -> None:
        """A committed batch: observe it, and log its order ids at DEBUG, the link from each
        order's acceptance (logged with its request id) to the batch that settled it."""
        commands, duration = self._for(result.symbol)
        commands.observe(result.commands)
        duration.observe(seconds)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "batch %s of %s: %s commands in %.1f ms, orders %s",
                matcher.batches,
                result.symbol,
                result.commands,
                seconds * 1000,
                ",".join(str(state.id) for state in result.orders),
            )

    def backlog_observe(self, matchers) -> None:
        """Set the pending-command and lag gauges of each market, at most once a second."""
        now = time.monotonic()
        if now < self._backlog_due or not matchers:
            return
        self._backlog_due = now + BACKLOG_INTERVAL
        by_id = {m.market_id: m.symbol for m in matchers}
        try:
            rows = (
                OrderCommand.objects.filter(processed_at__isnull=True, market_id__in=list(by_id))
                .values("market_id")
                .annotate(pending=Count("id"), oldest=Min("created_at"))
                .order_by()
            )
            backlog = {row["market_id"]: (row["pending"], row["oldest"]) for row in rows}
        except DatabaseError:
            return  # the runner notices the lost connection itself; gauges keep their values
        wall = timezone.now()
        for market_id, symbol in by_id.items():
            pending, oldest = backlog.get(market_id, (0, None))
            MATCHER_PENDING.labels(symbol).set(pending)
            MATCHER_LAG.labels(symbol).set((wall - oldest).total_seconds() if oldest else 0.0)

    def close(self) -> None:
        """This matcher stops: its backlog gauges go (another matcher takes over)."""
        process_exited(os.getpid())
