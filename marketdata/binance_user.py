"""Binance's private streams: the user-data stream of a ``listenKey``
(``/api/v3/ws/<listenKey>``, also ``/ws/<listenKey>``) and the WebSocket API
(``/ws-api/v3``), whose ``userDataStream.subscribe.signature`` is what ccxt.pro's
``watch_orders``, ``watch_my_trades`` and ``watch_balance`` use on spot.

Both join the user's Channels group (``user.<id>``) and turn its private messages into
Binance's events (``trading.binance.user_events.user_event``): ``executionReport``,
``outboundAccountPosition``, ``balanceUpdate``; each carries the user's event number
``seq`` (``exchange_site.user_events``) so that a client can tell one was lost. The
WebSocket API wraps each as ``{"subscriptionId": n, "event": {...}}``, as Binance does.
Requests of the WebSocket API run in ``trading.binance.ws_api`` off the event loop.
"""

import asyncio
import json
import logging
import time

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection

from accounts import services as account_services
from exchange_site.exceptions import ExchangeError
from exchange_site.user_events import user_streams_mark
from marketdata.binance_consumers import BinanceStreamConsumer
from marketdata.groups import user_group
from marketdata.outbox import OutboxConsumer
from trading.binance import errors, listen_keys, ws_api
from trading.binance.errors import BinanceError
from trading.binance.user_events import listen_key_expired, user_event

logger = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
_COMPACT = (",", ":")
WEIGHT_LIMIT = 6000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _client_ip(scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


async def mark_watched(user_ids) -> None:
    """Tell the matcher these users want Binance's reports (``user_streams_mark``)."""
    if not user_ids:
        return
    try:
        await asyncio.to_thread(user_streams_mark, list(user_ids))
    except Exception:
        logger.warning("user streams not marked (Redis unavailable)", exc_info=True)


def _call_in_pool_thread(method: str, params: dict, **kwargs):
    try:
        return ws_api.call(method, params, **kwargs)
    finally:
        # Back to the pool (the ws process runs psycopg's pool, ARCHITECTURE §1): a pool
        # thread may not run Django code again for a long time.
        connection.close()


def _key_usable(key: str, ip: str | None) -> bool:
    """Whether ``key`` may still read its owner's events (not revoked, owner not frozen)."""
    try:
        account_services.api_key_identify(key=key, ip=ip)
    except ExchangeError:
        return False
    finally:
        connection.close()
    return True


def binance_user_event(message: dict) -> dict | None:
    """The Binance event of one ``user.event`` layer message, with its ``seq``."""
    event = user_event(message["channel"], message["text"])
    if event is not None and message.get("seq") is not None:
        event["seq"] = message["seq"]
    return event


class ListenKeyConsumer(BinanceStreamConsumer):
    """``/api/v3/ws/<listenKey>``: the key owner's events as bare objects; market streams
    can be subscribed to on the same connection. When the key expires or is closed, sends
    ``listenKeyExpired`` and closes."""

    async def connect(self):
        self.subscriptions = {}
        self.closing = False
        self.combined = False
        self.listen_key = self.scope["url_route"]["kwargs"]["listen_key"]
        self.user_id = None
        await self.open_outbox()
        self.user_id = await asyncio.to_thread(listen_keys.listen_key_user, self.listen_key)
        if self.user_id is None:
            await self._expired()
            return
        await self.channel_layer.group_add(user_group(self.user_id), await self.channel_open())
        await mark_watched([self.user_id])
        self.watcher = asyncio.get_running_loop().create_task(self._watch())

    async def disconnect(self, code):
        watcher = getattr(self, "watcher", None)
        if watcher is not None:
            watcher.cancel()
        if self.user_id is not None and self.channel_name is not None:
            await self.channel_layer.group_discard(user_group(self.user_id), self.channel_name)
        await super().disconnect(code)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(settings.LISTEN_KEY_CHECK_SECONDS)
            try:
                owner = await asyncio.to_thread(listen_keys.listen_key_user, self.listen_key)
            except Exception:
                continue  # Redis away: the key is checked again next time
            if owner != self.user_id:
                await self._expired()
                return
            await mark_watched([self.user_id])

    async def _expired(self) -> None:
        self.closing = True
        await self.send(text_data=json.dumps(listen_key_expired(self.listen_key)))
        await self.close()

    async def user_event(self, message):
        event = binance_user_event(message)
        if event is not None:
            self.deliver_text(json.dumps(event, separators=_COMPACT))


class WsApiConsumer(OutboxConsumer):
    """``/ws-api/v3``: requests ``{"id", "method", "params"}`` answered ``{"id", "status",
    "result", "rateLimits"}`` or ``{"id", "status", "error": {"code", "msg"}}``, and the
    user-data stream of each account subscribed on the connection."""

    async def connect(self):
        self.session_key = None  # the API key of session.logon
        self.session_user = None
        self.logged_on_at = None
        self.connected_at = _now_ms()
        self.subscriptions: dict[int, int] = {}  # subscription id → user id
        self.session_subscriptions: set[int] = set()  # those of userDataStream.subscribe
        self.subscription_keys: dict[int, str] = {}  # subscription id → the API key it used
        self.next_subscription = 0
        self.weight_minute, self.weight_used = 0, 0
        query = self.scope.get("query_string", b"").decode()
        self.rate_limits_default = "returnRateLimits=false" not in query
        self.marker = None
        await self.open_outbox()

    async def disconnect(self, code):
        if self.marker is not None:
            self.marker.cancel()
        for user_id in set(self.subscriptions.values()):
            await self.channel_layer.group_discard(user_group(user_id), self.channel_name)
        self.subscriptions.clear()
        self.close_outbox()

    def _fell_behind(self) -> None:
        asyncio.get_running_loop().create_task(self.close(code=POLICY_VIOLATION))

    # --- answers --------------------------------------------------------------------------

    def _weigh(self, weight: int) -> list[dict]:
        minute = int(time.time() // 60)
        if minute != self.weight_minute:
            self.weight_minute, self.weight_used = minute, 0
        self.weight_used += weight
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": WEIGHT_LIMIT,
                "count": self.weight_used,
            }
        ]

    def _answer(self, request_id, body: dict, rate_limits: list | None) -> None:
        answer = {"id": request_id, **body}
        if rate_limits is not None:
            answer["rateLimits"] = rate_limits
        self.deliver_text(json.dumps(answer, separators=_COMPACT))

    def _error(self, request_id, error: BinanceError, rate_limits=None) -> None:
        status = error.status if error.status >= 400 else 400
        body = {"status": status, "error": {"code": error.code, "msg": error.msg}}
        self._answer(request_id, body, rate_limits)

    # --- requests -------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        raw = text_data if text_data is not None else bytes_data
        if raw is not None and len(raw) > settings.WS_MAX_MESSAGE_BYTES:
            self._error(None, BinanceError(errors.TOO_MANY_PARAMETERS, "Request too large."))
            await self.close(code=POLICY_VIOLATION)
            return
        if not self._take_token():
            self._error(
                None, BinanceError(errors.TOO_MANY_REQUESTS, "Too many requests.", status=429)
            )
            await self.close(code=POLICY_VIOLATION)
            return
        try:
            request = json.loads(raw) if raw is not None else None
        except ValueError:
            request = None
        if not isinstance(request, dict):
            self._error(None, BinanceError(errors.ILLEGAL_CHARS, "Malformed request."))
            return
        request_id = request.get("id")
        if isinstance(request_id, bool) or not isinstance(request_id, int | str | None):
            self._error(None, errors.illegal_chars("id", "^[a-zA-Z0-9-_]{1,36}$"))
            return
        method, params = request.get("method"), request.get("params", {})
        if not isinstance(method, str) or not method:
            self._error(request_id, errors.mandatory("method"))
            return
        if params is None:
            params = {}
        if not isinstance(params, dict):
            self._error(request_id, errors.mandatory("params"))
            return
        show_limits = params.get("returnRateLimits", self.rate_limits_default) is not False
        weight = ws_api.SIGNED[method][3] if method in ws_api.SIGNED else 1
        limits = self._weigh(weight) if show_limits else None
        try:
            result = await self._call(method, params)
        except BinanceError as error:
            self._error(request_id, error, limits)
            return
        self._answer(request_id, {"status": 200, "result": result}, limits)

    async def _call(self, method: str, params: dict):
        if method in ws_api.SIGNED:
            # In a pool thread, not Django's one thread for sync code: an order's answer
            # waits for the matcher (up to BINANCE_ORDER_WAIT_MS) and must not hold up the
            # other connections' calls meanwhile.
            return await database_sync_to_async(_call_in_pool_thread, thread_sensitive=False)(
                method, params, ip=_client_ip(self.scope), session_key=self.session_key
            )
        handler = {
            "ping": self._ping,
            "time": self._time,
            "session.logon": self._logon,
            "session.status": self._status,
            "session.logout": self._logout,
            "userDataStream.subscribe": self._subscribe,
            "userDataStream.subscribe.signature": self._subscribe_signature,
            "userDataStream.unsubscribe": self._unsubscribe,
            "session.subscriptions": self._subscriptions,
        }.get(method)
        if handler is None:
            raise BinanceError(errors.UNSUPPORTED_OPERATION, f"Unknown method '{method}'.")
        return await handler(params)

    async def _ping(self, params):
        return {}

    async def _time(self, params):
        return {"serverTime": _now_ms()}

    async def _logon(self, params):
        api_key = await database_sync_to_async(ws_api.session_logon)(
            params, ip=_client_ip(self.scope)
        )
        self.session_key, self.session_user = api_key.key, api_key.user_id
        self.logged_on_at = _now_ms()
        return await self._status({})

    async def _status(self, params):
        return {
            "apiKey": self.session_key,
            "authorizedSince": self.logged_on_at,
            "connectedSince": self.connected_at,
            "returnRateLimits": self.rate_limits_default,
            "serverTime": _now_ms(),
            "userDataStream": bool(self.subscriptions),
        }

    async def _logout(self, params):
        # Binance: logout ends userDataStream.subscribe's subscription, not .signature's.
        self.session_key = self.session_user = self.logged_on_at = None
        for subscription_id in list(self.session_subscriptions):
            await self._end(subscription_id)
        return await self._status({})

    async def _start(self, user_id: int, key: str) -> dict:
        if user_id in self.subscriptions.values():
            raise BinanceError(
                errors.SUBSCRIPTION_ACTIVE, "User Data Stream subscription already active."
            )
        subscription_id = self.next_subscription
        self.next_subscription += 1
        self.subscriptions[subscription_id] = user_id
        self.subscription_keys[subscription_id] = key
        await self.channel_layer.group_add(user_group(user_id), await self.channel_open())
        await mark_watched([user_id])
        if self.marker is None:
            self.marker = asyncio.get_running_loop().create_task(self._mark())
        return {"subscriptionId": subscription_id}

    async def _mark(self) -> None:
        """Every USER_STREAM_CHECK_SECONDS: end the subscriptions whose key was revoked (or
        whose owner was frozen) with Binance's ``eventStreamTerminated``, and mark the
        users of the others as watching."""
        while True:
            await asyncio.sleep(settings.USER_STREAM_CHECK_SECONDS)
            for subscription_id, key in list(self.subscription_keys.items()):
                if not await database_sync_to_async(_key_usable)(key, _client_ip(self.scope)):
                    await self._terminate(subscription_id)
            await mark_watched(set(self.subscriptions.values()))

    async def _terminate(self, subscription_id: int) -> None:
        if subscription_id not in self.subscriptions:
            return
        await self._end(subscription_id)
        event = {"e": "eventStreamTerminated", "E": _now_ms()}
        wrapped = {"subscriptionId": subscription_id, "event": event}
        self.deliver_text(json.dumps(wrapped, separators=_COMPACT))

    async def _end(self, subscription_id: int) -> None:
        user_id = self.subscriptions.pop(subscription_id)
        self.subscription_keys.pop(subscription_id, None)
        self.session_subscriptions.discard(subscription_id)
        if user_id not in self.subscriptions.values():
            await self.channel_layer.group_discard(user_group(user_id), self.channel_name)

    async def _subscribe_signature(self, params):
        api_key = await database_sync_to_async(ws_api.session_logon)(
            params, ip=_client_ip(self.scope)
        )
        return await self._start(api_key.user_id, api_key.key)

    async def _subscribe(self, params):
        if self.session_user is None:
            raise errors.rejected_key()
        result = await self._start(self.session_user, self.session_key)
        self.session_subscriptions.add(result["subscriptionId"])
        return result

    async def _unsubscribe(self, params):
        wanted = params.get("subscriptionId")
        if wanted is None:
            for subscription_id in list(self.subscriptions):
                await self._end(subscription_id)
            return {}
        if isinstance(wanted, bool) or not isinstance(wanted, int):
            raise errors.illegal_chars("subscriptionId", "^[0-9]{1,20}$")
        if wanted not in self.subscriptions:
            raise BinanceError(
                errors.SUBSCRIPTION_INACTIVE, "User Data Stream subscription not active."
            )
        await self._end(wanted)
        return {}

    async def _subscriptions(self, params):
        return [{"subscriptionId": subscription_id} for subscription_id in self.subscriptions]

    # --- events ---------------------------------------------------------------------------

    async def user_event(self, message):
        event = binance_user_event(message)
        if event is None:
            return
        user_id = message.get("user")
        for subscription_id, subscribed_user in self.subscriptions.items():
            if user_id is None or subscribed_user == user_id:
                self.deliver_text(
                    json.dumps(
                        {"subscriptionId": subscription_id, "event": event}, separators=_COMPACT
                    )
                )
