"""Private events of order entry, sent from one background event loop per process.

``wallets.events.send_user_events`` drives the channel layer through ``async_to_sync``,
which starts an event loop (and so a Redis connection) on every call: about 2 ms of CPU on
the request thread for each accepted order (``bench/order_entry.py``), more than the order's
whole transaction. Here one daemon thread per process keeps one loop, and with it the
layer's connection; the request thread only queues the messages and returns. Events stay
best-effort, as everywhere (DESIGN §6): the balance over REST is the truth.
"""

import asyncio
import logging
import os
import threading
from collections.abc import Iterable

from channels.layers import get_channel_layer

from marketdata.groups import user_group

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def _event_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _lock:
        # A forked worker inherits the variable but not the thread: start its own.
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="user-events", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


async def _group_send_all(events: list[tuple[int, str, str]]) -> None:
    layer = get_channel_layer()
    for user_id, channel, text in events:
        await layer.group_send(
            user_group(user_id), {"type": "user.event", "channel": channel, "text": text}
        )


def _log_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.warning("private events not sent", exc_info=future.exception())


def user_events_send_soon(events: Iterable[tuple[int, str, str]]) -> None:
    """Queue ``(user_id, channel, text)`` events for their owners' groups; never raises
    and never waits for Redis."""
    events = list(events)
    if not events:
        return
    try:
        future = asyncio.run_coroutine_threadsafe(_group_send_all(events), _event_loop())
        future.add_done_callback(_log_failure)
    except Exception:
        logger.warning("private events not queued", exc_info=True)
