"""Balance events for the owner's private WebSocket channel (``balances``).

Sent after the transaction that changed the balance commits, never before, so a client
never sees money that could still roll back. A lost event (Redis down) is not a loss of
money: clients can always read the balance over REST.
"""

import json
import logging
from collections.abc import Iterable

from channels.layers import get_channel_layer
from django.db import transaction

from exchange_site.background import after_commit
from exchange_site.decimals import decimal_to_str
from marketdata.groups import user_group
from wallets.models import Balance

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


async def _send_events(events: list) -> None:
    layer = get_channel_layer()
    try:
        for user_id, channel, text in events:
            await layer.group_send(
                user_group(user_id), {"type": "user.event", "channel": channel, "text": text}
            )
    except Exception:
        logger.warning("private events not sent", exc_info=True)


def send_user_events(events: Iterable[tuple[int, str, str]]) -> None:
    """Queue ``(user_id, channel, text)`` events for their owners' groups, in order; never
    raises and never waits for Redis (events are best-effort: REST is the truth)."""
    events = list(events)
    if events:
        # In order with everything else sent after a commit (exchange_site.background).
        after_commit.submit(_send_events, events)


def balances_publish_on_commit(pairs: Iterable[tuple[int, int]]) -> None:
    """After commit, tell each owner the new state of these (user_id, asset_id) balances."""
    pairs = set(pairs)
    transaction.on_commit(lambda: _publish(pairs))


def _publish(pairs: set[tuple[int, int]]) -> None:
    user_ids = {user_id for user_id, _ in pairs}
    rows = Balance.objects.filter(user_id__in=user_ids).select_related("asset")
    send_user_events(
        (
            row.user_id,
            "balances",
            balance_message(asset_code=row.asset.code, available=row.available, locked=row.locked),
        )
        for row in rows
        if (row.user_id, row.asset_id) in pairs
    )
