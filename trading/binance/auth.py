"""Binance request signing: ``X-MBX-APIKEY``, an HMAC-SHA256 ``signature``, ``timestamp`` and
``recvWindow`` (https://developers.binance.com/docs/binance-spot-api-docs/rest-api).

The signature covers the raw query string followed by the raw body, exactly as received,
without the ``signature`` parameter itself. It is checked on those bytes, never on parsed and
re-serialized parameters: a client signs its own parameter order, and a reordered or altered
request must fail. Parameters are parsed here too (query string and form body), once per
request, because Binance reads them from both places whatever the method.
"""

import logging
import re
import time
from urllib.parse import parse_qsl

from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.throttling import BaseThrottle

from accounts import services as account_services
from exchange_site.exceptions import ExchangeError
from exchange_site.throttling import (
    ExchangeRateThrottle,
    rate_parse,
    scope_rate,
    throttling_enabled,
)
from trading.binance import errors
from trading.binance.errors import BinanceError

API_KEY_PATTERN = re.compile(r"[A-Za-z0-9]{64}")
SIGNATURE_PATTERN = re.compile(rb"[0-9A-Fa-f]{64}")
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
# Binance refuses a timestamp more than this far in the future.
MAX_CLOCK_AHEAD_MS = 1000
_SIGNATURE_PREFIX = b"signature="

logger = logging.getLogger("trading.binance")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class SignedPayload:
    """A request split into the bytes that were signed, the signature and the parameters."""

    __slots__ = ("params", "payload", "signature")

    def __init__(self, payload: bytes, signature: bytes | None, params: dict[str, str]):
        self.payload = payload
        self.signature = signature
        self.params = params


def _split(raw: bytes) -> tuple[bytes, list[bytes]]:
    """``raw`` without its signature parameters, and those parameters' values."""
    if _SIGNATURE_PREFIX not in raw:
        return raw, []
    kept, signatures = [], []
    for part in raw.split(b"&"):
        if part.startswith(_SIGNATURE_PREFIX):
            signatures.append(part[len(_SIGNATURE_PREFIX) :])
        else:
            kept.append(part)
    return b"&".join(kept), signatures


def _parse(raw: bytes) -> list[tuple[str, str]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = "Illegal characters found in a parameter."
        raise BinanceError(errors.ILLEGAL_CHARS, message) from exc
    return parse_qsl(text, keep_blank_values=True, max_num_fields=100)


def signed_payload(request) -> SignedPayload:
    """Parse the request once (cached on it): parameters from the query string and the
    body, where the query string wins on a name given in both (as on Binance)."""
    django_request = getattr(request, "_request", request)
    cached = getattr(django_request, "binance_payload", None)
    if cached is not None:
        return cached
    query = django_request.META.get("QUERY_STRING", "").encode("latin-1")
    try:
        body = django_request.body if django_request.method != "GET" else b""
    except RequestDataTooBig as exc:
        raise BinanceError(errors.TOO_MANY_PARAMETERS, "The request body is too large.") from exc
    query_rest, query_signatures = _split(query)
    body_rest, body_signatures = _split(body)
    signatures = query_signatures + body_signatures
    params: dict[str, str] = {}
    try:
        for source in (body_rest, query_rest):
            seen = set()
            for name, value in _parse(source):
                if name in seen:
                    raise BinanceError(
                        errors.TOO_MANY_PARAMETERS, "Duplicate values for a parameter detected."
                    )
                seen.add(name)
                params[name] = value
    except ValueError as exc:  # more fields than max_num_fields
        raise BinanceError(errors.TOO_MANY_PARAMETERS, "Too many parameters.") from exc
    if len(signatures) > 1:
        raise BinanceError(errors.TOO_MANY_PARAMETERS, "Duplicate values for a parameter detected.")
    result = SignedPayload(query_rest + body_rest, signatures[0] if signatures else None, params)
    django_request.binance_payload = result
    return result


def _timestamp_check(params: dict[str, str]) -> None:
    raw_timestamp = params.get("timestamp", "")
    if not raw_timestamp.isascii() or not raw_timestamp.isdigit() or len(raw_timestamp) > 20:
        raise errors.mandatory("timestamp")
    raw_window = params.get("recvWindow")
    window = DEFAULT_RECV_WINDOW_MS
    if raw_window is not None:
        if not raw_window.isascii() or not raw_window.isdigit() or len(raw_window) > 20:
            raise errors.illegal_chars("recvWindow", "^[0-9]{1,20}$")
        window = int(raw_window)
        if window > MAX_RECV_WINDOW_MS:
            raise BinanceError(errors.BAD_RECV_WINDOW, "recvWindow must be less than 60000")
    timestamp, now = int(raw_timestamp), now_ms()
    if timestamp >= now + MAX_CLOCK_AHEAD_MS:
        raise BinanceError(
            errors.INVALID_TIMESTAMP,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        )
    if now - timestamp > window:
        raise BinanceError(
            errors.INVALID_TIMESTAMP, "Timestamp for this request is outside of the recvWindow."
        )


class BinanceSignatureAuthentication(BaseAuthentication):
    """``SIGNED`` endpoints (TRADE, USER_DATA): key, then signature, then timestamp.

    A revoked key, a frozen or deactivated owner, or an address outside the key's allow-list
    is -2015 at once: nothing is cached between requests.
    """

    def authenticate(self, request):
        key = request.META.get("HTTP_X_MBX_APIKEY", "")
        if not API_KEY_PATTERN.fullmatch(key):
            raise BinanceError(errors.BAD_API_KEY_FMT, "API-key format invalid.", status=401)
        signed = signed_payload(request)
        if signed.signature is None or not signed.signature:
            raise errors.mandatory("signature")
        if not SIGNATURE_PATTERN.fullmatch(signed.signature):
            raise BinanceError(errors.INVALID_SIGNATURE, "Signature for this request is not valid.")
        try:
            api_key = account_services.api_key_authenticate(
                key=key,
                payload=signed.payload,
                signature=signed.signature.decode("ascii"),
                # The same client address the throttles use (NUM_PROXIES-aware).
                ip=BaseThrottle().get_ident(request),
            )
        except ExchangeError as exc:
            raise errors.from_exchange_error(exc) from exc
        _timestamp_check(signed.params)
        account_services.api_key_touch(api_key=api_key)
        return api_key.user, api_key

    def authenticate_header(self, request):
        return "X-MBX-APIKEY"


class CanRead(BasePermission):
    def has_permission(self, request, view):
        if request.auth is None or not request.auth.can_read:
            raise errors.rejected_key()
        return True


class CanTrade(BasePermission):
    def has_permission(self, request, view):
        if request.auth is None or not request.auth.can_trade:
            raise errors.rejected_key()
        return True


class BinanceRateThrottle(BaseThrottle):
    """Request weight per client address in the current window (a minute by default), as
    Binance limits ``REQUEST_WEIGHT`` per IP; checked before any key or signature work so that
    floods of bad signatures are limited too. ``used`` is what ``X-MBX-USED-WEIGHT-1M``
    reports. Open when its store (Redis) is down: a throttle must not turn an outage into
    errors."""

    scope = "binance"

    def __init__(self):
        self.num_requests, self.duration = rate_parse(scope_rate(self.scope))
        self.used: int | None = None
        self.retry_after = 0.0

    def header_name(self) -> str:
        """Binance's ``X-MBX-USED-WEIGHT-<interval>``, from the configured window."""
        return f"X-MBX-USED-WEIGHT-{interval_name(self.duration or 60)}"

    def allow_request(self, request, view, weight: int = 1):
        if not throttling_enabled() or self.num_requests is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        key = f"throttle_{self.scope}_{self.get_ident(request)}_{window}"
        try:
            cache.add(key, 0, timeout=self.duration + 1)
            self.used = cache.incr(key, weight)
        except Exception as exc:
            logger.warning("/api/v3 request not throttled: the cache failed (%s)", exc)
            return True
        if self.used > self.num_requests:
            self.retry_after = (window + 1) * self.duration - now
            return False
        return True

    def wait(self):
        return self.retry_after


class BinanceOrderThrottle(ExchangeRateThrottle):
    """New orders per API key, like Binance's ``ORDERS`` limit (refused with -1015)."""

    scope = "binance_orders"
    methods = frozenset({"POST"})


def interval_name(seconds: int) -> str:
    """Binance's interval suffix: ``10S``, ``1M``, ``1H``, ``1D``."""
    for unit_seconds, letter in ((86400, "D"), (3600, "H"), (60, "M")):
        if seconds % unit_seconds == 0:
            return f"{seconds // unit_seconds}{letter}"
    return f"{seconds}S"
