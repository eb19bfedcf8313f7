"""Request rate limits: DRF's ``SimpleRateThrottle`` on the Redis cache, one scope per kind of
request, each counted per API key, per user or per client address.

Scopes (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``, each overridable as ``THROTTLE_<SCOPE>``):
``orders`` (placing: a batch counts each order), ``cancels``, ``private_read``,
``private_write`` (every other private write), ``market_data`` (public, per address),
``auth`` (register, login, refresh, logout) and ``anon`` (any other anonymous request).
A rate is ``<requests>/<period>`` where the period is ``s``, ``min``, ``h``, ``d`` or a multiple
such as ``10s``. ``THROTTLING=off`` turns every limit off (benchmarks).

A refusal is DRF's ``Throttled``: 429 with ``Retry-After`` in the error shape
(``exchange_site.exception_handler``). Every throttle here is open while its store (Redis) is
down: a limiter must not turn a cache outage into errors.
"""

import logging
import re
import secrets
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

logger = logging.getLogger("exchange_site.throttling")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_RATE = re.compile(r"(?P<num>\d+)/(?P<mult>\d*)(?P<unit>[smhd])[a-z]*", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def throttling_enabled() -> bool:
    return getattr(settings, "THROTTLING", True)


def rate_parse(rate: str | None) -> tuple[int | None, int | None]:
    """``"50/s"``, ``"600/min"`` or ``"500/10s"`` as (requests, seconds); ``None`` is no limit.

    DRF reads only the period's first letter; the multiple lets a rate allow short bursts
    (``500/10s``) without allowing a sustained rate above ``50/s``.
    """
    if rate is None or str(rate).strip().lower() in ("", "none", "off"):
        return None, None
    match = _RATE.fullmatch(str(rate).replace(" ", ""))
    if match is None:
        raise ImproperlyConfigured(f"Bad throttle rate {rate!r}: use e.g. 50/s, 600/min, 500/10s.")
    seconds = _UNIT_SECONDS[match["unit"].lower()] * int(match["mult"] or 1)
    return int(match["num"]), seconds


def scope_rate(scope: str) -> str | None:
    # Read per request: tests and reloads change the settings after import.
    return api_settings.DEFAULT_THROTTLE_RATES.get(scope)


def client_address(request) -> str:
    """The client's address as DRF sees it (``NUM_PROXIES`` deep in ``X-Forwarded-For``)."""
    return BaseThrottle().get_ident(request)


def client_ident(request) -> str:
    """Who a request is counted against: its API key, else its user, else its address."""
    from accounts.models import ApiKey

    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        return f"key:{auth.pk}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_address(request)}"


# The sliding window of one key in ONE atomic round trip: drop what aged out, count, and add
# this request's entries if they fit. DRF's default (GET the pickled history list, SET it back)
# costs two round trips and lets two workers' concurrent requests both pass the last slot.
# Returns {allowed, count in the window, seconds until enough entries age out}.
_SLIDING_WINDOW_LUA = """
local now, duration = tonumber(ARGV[1]), tonumber(ARGV[2])
local limit, cost = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - duration)
local count = redis.call('ZCARD', KEYS[1])
if count + cost > limit then
  local oldest = redis.call('ZRANGE', KEYS[1], count + cost - limit - 1, count + cost - limit - 1,
                            'WITHSCORES')
  local wait = duration
  if oldest[2] then wait = tonumber(oldest[2]) + duration - now end
  return {0, count, tostring(wait)}
end
for i = 1, cost do redis.call('ZADD', KEYS[1], now, ARGV[5] .. i) end
redis.call('EXPIRE', KEYS[1], math.ceil(duration) + 1)
return {1, count + cost, '0'}
"""


_sliding_window = None


def _sliding_window_script(redis):
    """The registered script (EVALSHA, loaded again by redis-py if the server lost it)."""
    global _sliding_window
    if _sliding_window is None:
        _sliding_window = redis.register_script(_SLIDING_WINDOW_LUA)
    return _sliding_window


class ExchangeRateThrottle(SimpleRateThrottle):
    """A sliding-window limit of one scope, for the requests it ``applies`` to.

    ``methods`` limits it to some HTTP methods; ``audience`` to authenticated callers
    (``"user"``), anonymous ones (``"anon"``) or both (``"any"``).
    """

    scope = ""
    methods: Iterable[str] | None = None
    audience = "any"

    def __init__(self):
        # SimpleRateThrottle reads its rate once here; ours is read on each request.
        self.rate = self.num_requests = self.duration = None
        self.cost_needed = 1
        # Requests of the scope in the window, this one included when allowed (the Binance
        # API reports it as X-MBX-ORDER-COUNT-*); None until a request was counted.
        self.count: int | None = None
        self._wait: float | None = None

    def get_rate(self):
        return scope_rate(self.scope)

    def parse_rate(self, rate):
        return rate_parse(rate)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": client_ident(request)}

    def applies(self, request, view) -> bool:
        if self.methods is not None and request.method not in self.methods:
            return False
        if self.audience == "any":
            return True
        authenticated = bool(getattr(request.user, "is_authenticated", False))
        return authenticated == (self.audience == "user")

    def cost(self, request, view) -> int:
        """How many requests of the scope this one counts as."""
        return 1

    def allow_request(self, request, view):
        if not throttling_enabled() or not self.applies(request, view):
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.num_requests is None:
            return True
        self.cost_needed = max(1, self.cost(request, view))
        try:
            return self._allow(request, view)
        except Exception as exc:
            logger.warning("%s request not throttled: the cache failed (%s)", self.scope, exc)
            return True

    def _allow(self, request, view) -> bool:
        self.key = self.get_cache_key(request, view)
        self.now = self.timer()
        redis = self.cache.client.get_client(write=True)  # the cache is django-redis
        allowed, count, wait = _sliding_window_script(redis)(
            client=redis,
            keys=[self.cache.make_key(self.key)],
            args=[
                repr(self.now),
                self.duration,
                self.num_requests,
                self.cost_needed,
                f"{self.now!r}:{secrets.token_hex(4)}:",
            ],
        )
        self.count = int(count)
        if allowed:
            return True
        self._wait = float(wait)
        return self.throttle_failure()

    def wait(self):
        """Seconds until enough of the window's requests have aged out for this one."""
        if self.num_requests is None:
            return None
        if self._wait is None:
            return float(self.duration)
        return max(self._wait, 0.001)


class OrderPlaceRateThrottle(ExchangeRateThrottle):
    scope = "orders"
    methods = frozenset({"POST"})


class OrderBatchRateThrottle(OrderPlaceRateThrottle):
    """A batch counts as many orders as it holds, so batching does not multiply the limit."""

    max_batch = 20

    def cost(self, request, view) -> int:
        # A body that does not parse raises ParseError here, answered 400 as it would be later.
        data = request.data
        orders = data.get("orders") if hasattr(data, "get") else None
        if isinstance(orders, list):
            return min(max(len(orders), 1), self.max_batch)
        return 1


class OrderCancelRateThrottle(ExchangeRateThrottle):
    scope = "cancels"
    methods = frozenset({"DELETE"})


class PrivateReadRateThrottle(ExchangeRateThrottle):
    scope = "private_read"
    methods = SAFE_METHODS
    audience = "user"


class PrivateWriteRateThrottle(ExchangeRateThrottle):
    scope = "private_write"
    methods = UNSAFE_METHODS
    audience = "user"


class AnonRateThrottle(ExchangeRateThrottle):
    """Anonymous requests to anything not limited otherwise, per client address."""

    scope = "anon"
    audience = "anon"


class MarketDataRateThrottle(ExchangeRateThrottle):
    """Public market data, per client address (the views authenticate nobody)."""

    scope = "market_data"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}


class AuthRateThrottle(ExchangeRateThrottle):
    """Credential endpoints, per client address: slows password and token guessing."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}
