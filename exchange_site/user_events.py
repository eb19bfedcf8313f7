"""Private events, numbered per user, for each owner's group (``user.<id>``).

Every private event (an order's state, a balance, a fill, a deposit's credit) is sent here,
by the matcher and by the web and ws processes alike, and gets the next number of its
owner's sequence (``seq``, from 1). One Redis script takes the number and publishes the
event to the owner's layer group in the same step, so

- numbers are given only to events that were published, and published in number order
  (Redis runs one script at a time): a subscriber receives a user's events in ``seq``
  order, whichever processes sent them;
- a number missing on the receiving side means an event was lost in delivery (the
  subscriber's Redis connection broke and came back), so a client that sees a gap knows it
  must read the state again over REST.

What cannot show as a gap is an event that was never published: a process that died
between its commit and this call. The matcher republishes its own from the database
(``trading.binance.user_events.replay``); see docs/BINANCE.md, "Ordering and loss".

The layer message is ``{"type": "user.event", "channel", "text", "seq", "user"}``, sent as
``channels_redis``'s pub/sub layer sends a ``group_send`` (msgpack of the dict on the
group's Redis channel); the script packs it itself with Redis's ``cmsgpack`` so that the
number goes inside. ``trading/tests/binance/test_user_stream.py``
checks that the layer's ``receive`` reads what this sends.
"""

import logging
import os

import redis
from django.conf import settings

from exchange_site.db_router import users_pin_to_primary
from exchange_site.redis_clients import redis_client
from exchange_site.streams import USER_EVENT, user_group

logger = logging.getLogger(__name__)

SEQ_KEY = "exchange:user-seq:{user_id}"
# The /ws/ ``order`` messages: Binance's streams leave them out (each state change is an
# ``executionReport`` there), so numbering them would show those streams false gaps.
UNNUMBERED = ("orders",)

# ARGV[1]: the prefix of the sequence keys (SEQ_KEY without the user id), ARGV[2]: the layer
# message type; then one argument per event: user id, the group's Redis channel and the
# event's channel, each followed by a newline (none of them holds one), then its text. One
# argument rather than five and a key: packing each argument was most of what publishing a
# matcher batch's thousands of events cost redis-py. Events of the UNNUMBERED channels get
# no number (0 in the answer). Returns the numbers.
_PUBLISH = """
local prefix, kind = ARGV[1], ARGV[2]
local numbers = {}
for i = 3, #ARGV do
    local event = ARGV[i]
    local a = string.find(event, '\\n', 1, true)
    local b = string.find(event, '\\n', a + 1, true)
    local c = string.find(event, '\\n', b + 1, true)
    local user = string.sub(event, 1, a - 1)
    local channel = string.sub(event, b + 1, c - 1)
    local n = nil
    if channel ~= 'orders' then
        n = redis.call('INCR', prefix .. user)
    end
    local message = cmsgpack.pack({
        type = kind, channel = channel, text = string.sub(event, c + 1), seq = n,
        user = tonumber(user)
    })
    redis.call('PUBLISH', string.sub(event, a + 1, b - 1), message)
    numbers[i - 2] = n or 0
end
return numbers
"""
SEQ_KEY_PREFIX = SEQ_KEY.format(user_id="")


def seq_key(user_id: int) -> str:
    return SEQ_KEY.format(user_id=user_id)


def layer_group_channel(group: str) -> str:
    """The Redis channel channels-redis's pub/sub layer publishes ``group``'s messages on
    (``RedisPubSubLoopLayer._get_group_channel_name``)."""
    prefix = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "asgi")
    return f"{prefix}__group__{group}"


class _Client:
    """One Redis client per process (a forked worker makes its own)."""

    def __init__(self):
        self._client = None
        self._pid = None
        self._script = None

    def get(self) -> redis.Redis:
        if self._client is None or self._pid != os.getpid():
            config = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
            host = (config.get("hosts") or [settings.REDIS_URL])[0]
            self._client = redis_client(host, socket_timeout=2, socket_connect_timeout=2)
            self._script = self._client.register_script(_PUBLISH)
            self._pid = os.getpid()
        return self._client

    @property
    def script(self):
        self.get()
        return self._script


_client = _Client()


def _script_args(events: list[tuple[int, str, str]]) -> tuple[list[str], list[str]]:
    """The script's (KEYS, ARGV) for ``events``. The sequence keys are built by the script
    (from ARGV[1]): one Redis server holds them all, as the layer's own single host does."""
    groups: dict[int, str] = {}
    args = [SEQ_KEY_PREFIX, USER_EVENT]
    for user_id, channel, text in events:
        group = groups.get(user_id)
        if group is None:
            group = groups[user_id] = layer_group_channel(user_group(user_id))
        args.append(f"{user_id}\n{group}\n{channel}\n{text}")
    return [], args


def user_events_queue(pipe, events: list[tuple[int, str, str]]) -> None:
    """Add the publishing of ``(user_id, channel, text)`` events, in order, to ``pipe`` (a
    pipeline of this module's client, ``pipeline()``). Pins their users' reads to the
    primary for the read-your-writes window (``exchange_site.db_router``)."""
    if events:
        users_pin_to_primary(user_id for user_id, _, _ in events)
        keys, args = _script_args(events)
        _client.script(keys=keys, args=args, client=pipe)


def pipeline():
    return _client.get().pipeline(transaction=False)


def user_events_publish(events: list[tuple[int, str, str]]) -> list[int]:
    """Number and publish ``(user_id, channel, text)`` events, in order; returns their numbers.
    Raises what Redis raises (callers log it: events are best effort, REST is the truth)."""
    if not events:
        return []
    # An event means its owner's orders or balances just changed (a fill, a deposit): their
    # statements stay on the primary for the read-your-writes window.
    users_pin_to_primary(user_id for user_id, _, _ in events)
    keys, args = _script_args(events)
    return list(_client.script(keys=keys, args=args))


# --- who watches ------------------------------------------------------------------------
# Binance's reports cost the matcher a query and a JSON document per order change, so it
# builds them only for users with a Binance user data stream open: each such connection marks
# its user every LISTEN_KEY_CHECK_SECONDS or USER_STREAM_CHECK_SECONDS (settings), and a mark
# lapses STREAM_TTL_SECONDS after the last (a ws process that died stops marking).
STREAM_KEY = "exchange:user-stream:{user_id}"
STREAM_TTL_SECONDS = 60


def user_streams_mark(user_ids) -> None:
    """Note that these users have a Binance user data stream open (for STREAM_TTL_SECONDS)."""
    pipe = _client.get().pipeline(transaction=False)
    for user_id in user_ids:
        pipe.set(STREAM_KEY.format(user_id=user_id), 1, ex=STREAM_TTL_SECONDS)
    pipe.execute()


def user_streams_watched(user_ids) -> set[int]:
    """Those of ``user_ids`` with a Binance user data stream open. Raises what Redis raises."""
    user_ids = list(user_ids)
    if not user_ids:
        return set()
    marks = _client.get().mget([STREAM_KEY.format(user_id=user_id) for user_id in user_ids])
    return {user_id for user_id, mark in zip(user_ids, marks, strict=True) if mark is not None}
