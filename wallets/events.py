"""Balance events for the owner's private WebSocket channel (``balances``), and for
Binance's user-data stream a ``balance_updates`` event per deposit, withdrawal or
adjustment (its ``balanceUpdate``).

Sent after the transaction that changed the balance commits, never before, so a client
never sees money that could still roll back; numbered per user with every other private
event (``exchange_site.user_events``). A lost event (Redis down) is not a loss of money:
clients can always read the balance over REST.
"""

import json
import logging
import time
from collections.abc import Iterable

from django.db import transaction

from exchange_site.background import after_commit
from exchange_site.decimals import decimal_to_str
from exchange_site.user_events import user_events_publish
from wallets.models import Balance, LedgerKind

# Ledger kinds Binance reports with ``balanceUpdate`` (money in or out of the account).
BALANCE_UPDATE_KINDS = frozenset(
    {LedgerKind.DEPOSIT, LedgerKind.WITHDRAWAL, LedgerKind.WITHDRAWAL_FEE, LedgerKind.ADJUSTMENT}
)

logger = logging.getLogger(__name__)


def balance_message(*, asset_code: str, available, locked) -> str:
    return json.dumps(
        {
            "type": "balance",
            "channel": "balances",
            "asset": asset_code,
            "available": decimal_to_str(available),
            "locked": decimal_to_str(locked),
        }
    )


def balance_update_message(*, asset_code: str, delta, at_ms: int) -> str:
    return json.dumps({"asset": asset_code, "delta": decimal_to_str(delta), "time": at_ms})


def _send_events(events: list) -> None:
    try:
        user_events_publish(events)
    except Exception:
        logger.warning("private events not sent", exc_info=True)


def send_user_events(events: Iterable[tuple[int, str, str]]) -> None:
    """Queue ``(user_id, channel, text)`` events for their owners' groups, in order; never
    raises and never waits for Redis (events are best-effort: REST is the truth)."""
    events = list(events)
    if events:
        # In order with everything else sent after a commit (exchange_site.background).
        after_commit.submit(_send_events, events)


def balances_publish_on_commit(pairs: Iterable[tuple[int, int]], changes: Iterable = ()) -> None:
    """After commit, tell each owner the new state of these (user_id, asset_id) balances,
    after a ``balance_updates`` event for each of ``changes`` (``BalanceChange``) that moved
    money in or out of the account (``BALANCE_UPDATE_KINDS``, free balance changed)."""
    pairs = set(pairs)
    updates = [
        (change.user_id, change.asset_id, change.available)
        for change in changes
        if change.kind in BALANCE_UPDATE_KINDS and change.available
    ]
    transaction.on_commit(lambda: _publish(pairs, updates))


def _publish(pairs: set[tuple[int, int]], updates: list) -> None:
    user_ids = {user_id for user_id, _ in pairs}
    rows = list(Balance.objects.filter(user_id__in=user_ids).select_related("asset"))
    codes = {row.asset_id: row.asset.code for row in rows}
    at_ms = time.time_ns() // 1_000_000
    events = [
        (
            user_id,
            "balance_updates",
            balance_update_message(asset_code=codes[asset_id], delta=delta, at_ms=at_ms),
        )
        for user_id, asset_id, delta in updates
        if asset_id in codes
    ]
    events += [
        (
            row.user_id,
            "balances",
            balance_message(asset_code=row.asset.code, available=row.available, locked=row.locked),
        )
        for row in rows
        if (row.user_id, row.asset_id) in pairs
    ]
    send_user_events(events)
