"""The matcher process: owns its markets' books, consumes commands, publishes after commit.

One matcher per market at a time: a PostgreSQL advisory lock per market, held on this
process's connection; a second matcher for the same market waits until the lock frees.
Wake-ups come through Redis; without Redis the loop polls the database instead.
"""

import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.utils import timezone

from trading.matcher.market import MarketMatcher
from trading.matcher.metrics import MatcherMetrics
from trading.matcher.publish import Publisher, heartbeat_write
from trading.matcher.wakeup import matcher_wait
from trading.models import Market

logger = logging.getLogger("trading.matcher")

# pg_advisory_lock(key1, key2): key1 names the lock family, key2 is the market id.
ADVISORY_LOCK_FAMILY = 0x4D41  # "MA"
HEARTBEAT_EVERY_SECONDS = 0.25


class Matcher:
    """Runs the markets it is given until ``stop()`` (or SIGTERM/SIGINT in ``run``)."""

    def __init__(
        self,
        symbols: list[str] | None = None,
        *,
        batch_size: int | None = None,
        poll_seconds: float | None = None,
    ):
        self.symbols = symbols
        self.batch_size = batch_size or settings.MATCHER_BATCH_SIZE
        self.poll_seconds = poll_seconds or settings.MATCHER_POLL_SECONDS
        self._stopping = threading.Event()
        self._locked: set[int] = set()
        self._heartbeat_at = float("-inf")
        self.matchers: list[MarketMatcher] = []
        self.publisher = Publisher()
        self.metrics = MatcherMetrics()
        self.batches = 0
        self.commands = 0
        self.last_batch_at = None
        self.worked: set[str] = set()
        self.backlog = False
        self.batch_window = settings.MATCHER_BATCH_WINDOW_MS / 1000
        self._next_poll = 0.0

    # --- lifecycle ----------------------------------------------------------------------

    def stop(self, *_args) -> None:
        """Finish the batch in progress, then return from ``run``."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self) -> None:
        markets = self._markets()
        logger.info("matcher %s starting for %s", os.getpid(), ", ".join(m.symbol for m in markets))
        self.matchers = [MarketMatcher(market) for market in markets]
        due: set[str] | None = None  # None: every market (start, and each poll)
        try:
            while not self.stopping:
                if not self._hold_locks() or not self._restore_books():
                    continue
                worked = self.run_once(due)
                self._heartbeat()
                self.metrics.backlog_observe(self.matchers)
                if worked:
                    due = self.worked  # markets that had commands may have more
                    if not self.backlog and self.batch_window:
                        # No backlog: let the next commands gather for a moment instead of
                        # paying a transaction per command under a steady trickle. An idle
                        # matcher still answers the first command at once.
                        self._stopping.wait(self.batch_window)
                elif not self.stopping:
                    due = self._wait()
        finally:
            self.publisher.flush_due(self.matchers, force=True)
            self.publisher.close()
            self._release_locks()
            self.metrics.close()
            logger.info("matcher %s stopped after %s batches", os.getpid(), self.batches)

    def run_once(self, due: set[str] | None = None) -> bool:
        """One batch for each market in ``due`` (all when None); True if any command was
        processed. ``self.worked`` names the markets that processed some."""
        worked = False
        self.worked: set[str] = set()
        self.backlog = False
        for matcher in self.matchers:
            if due is not None and matcher.symbol not in due:
                continue
            if self.stopping:
                break
            started = time.perf_counter()
            try:
                result = matcher.run_batch(self.batch_size)
            except (OperationalError, InterfaceError):
                logger.exception("database unavailable; retrying %s", matcher.symbol)
                self._lost_connection()
                return False
            except DatabaseError:
                logger.exception("batch of %s failed and was rolled back", matcher.symbol)
                time.sleep(0.5)
                continue
            if result is None:
                continue
            worked = True
            self.worked.add(matcher.symbol)
            full = result.commands >= self.batch_size
            self.backlog = self.backlog or full
            self.batches += 1
            self.commands += result.commands
            self.last_batch_at = timezone.now()
            self.metrics.batch_done(matcher, result, time.perf_counter() - started)
            # A full batch means more are waiting: its events go out while the next batch
            # runs, rather than the matcher waiting for Redis between the two.
            self.publisher.batch_committed(result, matcher, wait=not full)
        self.publisher.flush_due(self.matchers)
        if not self.backlog:
            self.publisher.settle()  # caught up: everything committed is published
        return worked

    # --- helpers ------------------------------------------------------------------------

    def _restore_books(self) -> bool:
        """Rebuild any book that is missing (start, or after a failure) and publish its
        snapshot, so subscribers start from the committed state and its seq."""
        for matcher in self.matchers:
            if matcher.book is not None:
                continue
            try:
                matcher.restore()
            except (OperationalError, InterfaceError):
                logger.exception("database unavailable while restoring %s", matcher.symbol)
                self._lost_connection()
                return False
            self.publisher.snapshot(matcher)
        return True

    def _markets(self) -> list[Market]:
        markets = Market.objects.order_by("symbol")
        if self.symbols:
            markets = markets.filter(symbol__in=self.symbols)
            missing = set(self.symbols) - set(markets.values_list("symbol", flat=True))
            if missing:
                raise ValueError(f"unknown markets: {', '.join(sorted(missing))}")
        return list(markets)

    def _hold_locks(self) -> bool:
        """Take every market's advisory lock, waiting while another matcher holds one."""
        wanted = [m.market_id for m in self.matchers if m.market_id not in self._locked]
        try:
            with connection.cursor() as cursor:
                for market_id in wanted:
                    cursor.execute(
                        "SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_LOCK_FAMILY, market_id]
                    )
                    if cursor.fetchone()[0]:
                        self._locked.add(market_id)
        except (OperationalError, InterfaceError):
            self._lost_connection()
            return False
        if len(self._locked) < len(self.matchers):
            waiting = [m.symbol for m in self.matchers if m.market_id not in self._locked]
            logger.info("waiting for another matcher to release %s", ", ".join(waiting))
            self._stopping.wait(1.0)
            return False
        return True

    def _release_locks(self) -> None:
        if not self._locked:
            return
        try:
            with connection.cursor() as cursor:
                for market_id in self._locked:
                    cursor.execute(
                        "SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_LOCK_FAMILY, market_id]
                    )
        except DatabaseError:
            pass  # the session is gone, and its locks with it
        self._locked.clear()

    def _lost_connection(self) -> None:
        # The locks died with the session; another matcher may own the markets now, so
        # drop the books and rebuild them from the database once the locks are back.
        self._locked.clear()
        for matcher in self.matchers:
            matcher.book = None
        with contextlib.suppress(DatabaseError):
            connection.close()
        self._stopping.wait(1.0)

    def _wait(self) -> set[str] | None:
        """Wait for a wake-up; the markets to run next (None: all of them, as a poll)."""
        # Wake in time to flush a pending book diff.
        until_flush = self.publisher.seconds_to_next_flush()
        timeout = self.poll_seconds if until_flush is None else min(self.poll_seconds, until_flush)
        woken: set[str] = set()
        try:
            if timeout > 0:
                woken = matcher_wait([m.symbol for m in self.matchers], timeout)
        except Exception:  # Redis down: poll the database instead
            self._stopping.wait(timeout)
        self.publisher.flush_due(self.matchers)
        if woken:
            return woken
        if time.monotonic() >= self._next_poll:
            # Wake-ups are hints (one may be lost with Redis): look at every market now and
            # then, whatever Redis said.
            self._next_poll = time.monotonic() + self.poll_seconds
            return None
        return set()

    def _heartbeat(self) -> None:
        # At most every HEARTBEAT_EVERY_SECONDS: under a trickle of orders the loop turns
        # ~100 times a second, and a Redis write per turn was ~4 % of the matcher's CPU.
        now = time.monotonic()
        if now - self._heartbeat_at < HEARTBEAT_EVERY_SECONDS:
            return
        self._heartbeat_at = now
        heartbeat_write(
            symbols=[m.symbol for m in self.matchers],
            payload=json.dumps(
                {
                    # Containers all run their matcher as pid 1: the host name tells a
                    # shard's leader from its standby (manage.py matcher_health).
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "at": time.time(),
                    "batches": self.batches,
                    "commands": self.commands,
                    "last_batch_at": self.last_batch_at.isoformat() if self.last_batch_at else None,
                }
            ),
        )
