"""Every Redis client of the exchange comes from here, so one ``REDIS_URL`` reaches them all.

``REDIS_URL`` names either one Redis server (``redis://``, ``rediss://``, ``unix://``, as
redis-py reads them) or a group watched by Redis Sentinel::

    sentinel://[[user]:password@]host1:port1,host2:port2,host3:port3/<db>?master=<name>

``master`` defaults to ``exchange``; ``sentinel_password`` is the sentinels' own password
(``requirepass`` in sentinel.conf) when it differs from the data nodes'; ``ssl=true`` speaks
TLS to the sentinels and to the master. A port left out is Sentinel's 26379.

With a Sentinel URL every client asks the sentinels where the master is when it connects, and
connects again after an error, so a failover (Sentinel promoting a replica) reaches each of
them as one failed command followed by a working one:

- ``cache_settings``: django-redis, through its ``SentinelConnectionFactory``;
- ``channel_layer_hosts``: channels-redis, whose hosts accept a sentinel dict;
- ``celery_broker_settings``: kombu's and Celery's ``sentinel://a;sentinel://b`` form;
- ``redis_client`` / ``async_redis_client``: the code's own clients (matcher publishing,
  user events, market-data streams).

This module reads Django settings only when a client is asked for without a URL, so
``settings.py`` can call its builders.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis
import redis.asyncio as aioredis
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelManagedConnection, SentinelManagedSSLConnection
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

DEFAULT_MASTER = "exchange"
DEFAULT_SENTINEL_PORT = 26379
SCHEMES = ("redis", "rediss", "unix", "sentinel")
SENTINEL_OPTIONS = {"master", "sentinel_password", "ssl"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# A master that vanishes without closing its sockets (a host powered off, a network cut) is
# given up in about 11 s instead of the kernel's minutes to hours, so clients ask the
# sentinels again: TCP keepalive for an idle connection (a quiet subscription), and
# TCP_USER_TIMEOUT for one with a command unanswered. Linux names these options; elsewhere
# plain keepalive is used. A master that hangs with its host up is not noticed this way (its
# kernel still answers): see docs/OPERATIONS.md "Redis Sentinel".
_KEEPALIVE_OPTIONS = {
    getattr(socket, name): value
    for name, value in (
        ("TCP_KEEPIDLE", 5),
        ("TCP_KEEPINTVL", 2),
        ("TCP_KEEPCNT", 3),
        ("TCP_USER_TIMEOUT", 11_000),
    )
    if hasattr(socket, name)
}
# Asking a sentinel where the master is must fail fast: the next sentinel may know.
SENTINEL_SOCKET_TIMEOUT = 2.0
# A command's reply: a live master answers in milliseconds, a silent one is left after this.
COMMAND_SOCKET_TIMEOUT = 2.0
# A pub/sub reader waits for messages as long as there are none, so its read has no timeout:
# it PINGs a quiet connection this often instead, which gives TCP_USER_TIMEOUT an
# unanswered write to end the connection by even where keepalive is not available.
PUBSUB_HEALTH_CHECK_SECONDS = 5
# redis-py retries a failed command or connect ten times by default (with backoff), and a
# sentinel query as well: on a silent host with 2 s timeouts that is half a minute per
# command, past gunicorn's worker timeout. A master command is retried once, after
# reconnecting through the sentinels (a failover is one failed command followed by a
# working one); a sentinel query never is, as the next sentinel is its retry.
MASTER_RETRIES = 1
SENTINEL_RETRIES = 0


def retry_policy(retries: int, *, asyncio: bool = False) -> Retry | AsyncRetry:
    """redis-py's retry object for ``retries`` immediate retries (sync or asyncio client)."""
    return (AsyncRetry if asyncio else Retry)(NoBackoff(), retries)


class _LostAware:
    """An asyncio connection that reports a connection the kernel ended as lost.

    Once keepalive or TCP_USER_TIMEOUT gives a silent host up, the kernel ends the socket
    with ETIMEDOUT; asyncio stores that ``TimeoutError`` in the stream reader and raises it
    again at every read, at once. redis-py takes a ``TimeoutError`` during a read given a
    timeout of its own for that timeout expiring, and answers "no message": a pub/sub
    reader polling with ``get_message(timeout=...)`` (channels-redis's) then spins on the
    dead socket without ever yielding to the event loop or reconnecting, and the raised
    error's traceback grows at each turn (a ws process reached gigabytes in a minute of
    the multi-host test). Here a read on such a reader raises ``ConnectionError``, which
    the caller's retry answers by reconnecting through the sentinels.
    """

    async def _raise_if_lost(self) -> None:
        reader = self._reader
        error = reader.exception() if reader is not None else None
        if error is None:
            return
        where = self._host_error()
        await self.disconnect(nowait=True)
        raise redis.ConnectionError(f"Connection to {where} lost: {error!r}")

    async def read_response(self, *args, **kwargs):
        await self._raise_if_lost()
        response = await super().read_response(*args, **kwargs)
        if response is None:
            # The read may have "timed out" on the error itself.
            await self._raise_if_lost()
        return response


class LostAwareSentinelConnection(_LostAware, SentinelManagedConnection):
    """``SentinelManagedConnection`` that reports a socket the kernel ended (``_LostAware``)."""


class LostAwareSentinelSSLConnection(_LostAware, SentinelManagedSSLConnection):
    """The TLS twin of :class:`LostAwareSentinelConnection`."""


@dataclass(frozen=True)
class RedisURL:
    """A parsed ``REDIS_URL``: ``url`` as given, and for Sentinel its parts."""

    url: str
    scheme: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinels: tuple[tuple[str, int], ...] = field(default=())
    master: str = DEFAULT_MASTER
    sentinel_password: str | None = None
    ssl: bool = False

    @property
    def is_sentinel(self) -> bool:
        return self.scheme == "sentinel"

    def master_kwargs(self) -> dict[str, Any]:
        """Connection arguments for the master (Sentinel URLs)."""
        kwargs: dict[str, Any] = {"db": self.db, "password": self.password}
        if self.username:
            kwargs["username"] = self.username
        if self.ssl:
            kwargs["ssl"] = True
        return kwargs

    def sentinel_kwargs(self, *, asyncio: bool = False) -> dict[str, Any]:
        """Connection arguments for the sentinels themselves (of an asyncio client's)."""
        kwargs: dict[str, Any] = {
            "socket_timeout": SENTINEL_SOCKET_TIMEOUT,
            "socket_connect_timeout": SENTINEL_SOCKET_TIMEOUT,
            "retry": retry_policy(SENTINEL_RETRIES, asyncio=asyncio),
        }
        if self.sentinel_password:
            kwargs["password"] = self.sentinel_password
        if self.ssl:
            kwargs["ssl"] = True
        return kwargs


def redacted_url(url: str) -> str:
    """``url`` fit for an error message or a log line: the userinfo's password and every
    ``*password`` query parameter replaced by ``***``, whatever else the URL gets wrong."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    location, qmark, query = rest.partition("?")
    netloc, slash, path = location.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{hosts}"
    if qmark:
        query = "&".join(
            f"{key}=***" if key.lower().endswith("password") else f"{key}{eq}{value}"
            for key, eq, value in (pair.partition("=") for pair in query.split("&"))
        )
    return f"{scheme}{sep}{netloc}{slash}{path}{qmark}{query}"


def _bad(url: str, why: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"REDIS_URL {redacted_url(url)!r}: {why}")


def _db(url: str, text: str) -> int:
    text = text.strip("/")
    if text == "":
        return 0
    if not text.isdigit():
        raise _bad(url, f"the database must be a number, not {text!r}")
    return int(text)


def _sentinel_hosts(url: str, netloc: str) -> tuple[tuple[str, int], ...]:
    hosts = []
    for item in netloc.split(","):
        item = item.strip()
        if not item:
            raise _bad(url, "an empty sentinel address (check the commas)")
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else rest
        elif item.count(":") > 1:
            raise _bad(url, f"write the IPv6 sentinel {item!r} in brackets: [addr]:port")
        else:
            host, _, port_text = item.partition(":")
        if not host:
            raise _bad(url, f"sentinel address {item!r} has no host")
        if port_text == "":
            port = DEFAULT_SENTINEL_PORT
        elif port_text.isdigit() and 0 < int(port_text) < 65536:
            port = int(port_text)
        else:
            raise _bad(url, f"sentinel address {item!r} has no valid port")
        hosts.append((host, port))
    return tuple(hosts)


def _parse_sentinel(url: str) -> RedisURL:
    rest = url[len("sentinel://") :]
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    if fragment:
        raise _bad(url, "a fragment (#...) means nothing here")
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user_text, colon, password_text = userinfo.partition(":")
        username = unquote(user_text) or None
        password = unquote(password_text) if colon else None
        if not colon:
            raise _bad(url, "credentials need a colon: sentinel://[user]:password@...")
    if not netloc:
        raise _bad(url, "no sentinel addresses (sentinel://host1:port1,host2:port2/db)")
    sentinels = _sentinel_hosts(url, netloc)
    db = _db(url, path) if slash else 0
    options = parse_qs(query, keep_blank_values=True)
    unknown = set(options) - SENTINEL_OPTIONS
    if unknown:
        raise _bad(url, f"unknown option(s) {sorted(unknown)}; known: {sorted(SENTINEL_OPTIONS)}")
    for name, values in options.items():
        if len(values) > 1:
            raise _bad(url, f"option {name!r} is given twice")
    master = options.get("master", [DEFAULT_MASTER])[0]
    if not master:
        raise _bad(url, "master= names the Sentinel group and cannot be empty")
    ssl_text = options.get("ssl", ["false"])[0].lower()
    if ssl_text not in _TRUE | _FALSE:
        raise _bad(url, f"ssl must be true or false, not {ssl_text!r}")
    sentinel_password = options.get("sentinel_password", [None])[0]
    return RedisURL(
        url=url,
        scheme="sentinel",
        db=db,
        username=username,
        password=password,
        sentinels=sentinels,
        master=master,
        sentinel_password=sentinel_password or None,
        ssl=ssl_text in _TRUE,
    )


def parse_redis_url(url: str) -> RedisURL:
    """Parse and check a ``REDIS_URL``; a malformed one raises ``ImproperlyConfigured``
    naming what is wrong (start-up fails rather than the first request)."""
    if not isinstance(url, str) or "://" not in url:
        raise _bad(str(url), f"expected one of {', '.join(s + '://' for s in SCHEMES)}")
    scheme = url.partition("://")[0].lower()
    if scheme not in SCHEMES:
        raise _bad(url, f"unknown scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if scheme == "sentinel":
        return _parse_sentinel(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _bad(url, str(exc)) from None
    query = parse_qs(parts.query)
    if scheme == "unix":
        if not parts.path:
            raise _bad(url, "unix:// needs the socket's path, e.g. unix:///run/redis.sock?db=0")
        db = _db(url, query.get("db", [""])[0])
    else:
        if not parts.hostname:
            raise _bad(url, "no host")
        if port is not None and port == 0:
            raise _bad(url, "port 0")
        db = _db(url, query["db"][0]) if "db" in query else _db(url, parts.path)
    return RedisURL(
        url=url,
        scheme=scheme,
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ssl=scheme == "rediss",
    )


def _target(url: str | dict | None) -> RedisURL | dict:
    """``url`` as a parsed URL, or a channels-redis sentinel host dict as it is."""
    if url is None:
        from django.conf import settings

        url = settings.REDIS_URL
    if isinstance(url, dict):
        if "address" in url:
            return parse_redis_url(url["address"])
        if "sentinels" in url:
            return url
        raise ImproperlyConfigured(
            f"a Redis host entry needs 'address' or 'sentinels', not only {sorted(url)}"
        )
    return parse_redis_url(url)


def _master_plan(
    target: RedisURL | dict, kw: dict, *, asyncio: bool
) -> tuple[list, dict | None, str, dict]:
    """The sentinels, their connection arguments, the master's name and the master's
    connection arguments (``kw`` last) of a Sentinel URL or channels-redis host entry, for
    a sync or an asyncio client."""
    if isinstance(target, dict):
        kwargs = {
            k: v
            for k, v in target.items()
            # The layer's own asyncio and pub/sub settings: each client here picks its own.
            if k
            not in (
                "sentinels",
                "master_name",
                "sentinel_kwargs",
                "connection_class",
                "health_check_interval",
                "retry",
            )
        }
        sentinels = [tuple(s) for s in target["sentinels"]]
        sentinel_kwargs = target.get("sentinel_kwargs")
        if sentinel_kwargs is not None and "retry" in sentinel_kwargs:
            sentinel_kwargs = {
                **sentinel_kwargs,
                "retry": retry_policy(SENTINEL_RETRIES, asyncio=asyncio),
            }
        master = target["master_name"]
    else:
        kwargs = {
            **target.master_kwargs(),
            # A silent master must not hold a connect for the kernel's two minutes.
            "socket_connect_timeout": SENTINEL_SOCKET_TIMEOUT,
            "socket_keepalive": True,
            "socket_keepalive_options": _KEEPALIVE_OPTIONS,
        }
        sentinels, sentinel_kwargs = list(target.sentinels), target.sentinel_kwargs(asyncio=asyncio)
        master = target.master
    kwargs = {"retry": retry_policy(MASTER_RETRIES, asyncio=asyncio), **kwargs, **kw}
    return sentinels, sentinel_kwargs, master, kwargs


def _command_timeouts(kw: dict) -> dict:
    # Every command waits a bounded time; a caller with a longer blocking command (BLPOP
    # beyond it) or a pub/sub reader passes its own.
    return {
        "socket_timeout": COMMAND_SOCKET_TIMEOUT,
        "socket_connect_timeout": SENTINEL_SOCKET_TIMEOUT,
        **kw,
    }


def redis_client(url: str | dict | None = None, **kw) -> redis.Redis:
    """A synchronous client of the master: ``url`` (default ``settings.REDIS_URL``) may also
    be a channels-redis host entry. ``kw`` go to the connections (timeouts, decoding); a
    command and a connect give up after 2 s unless ``kw`` says otherwise.
    Keep the client: with Sentinel each one holds its own connections to the sentinels."""
    target = _target(url)
    kw = _command_timeouts(kw)
    if isinstance(target, RedisURL) and not target.is_sentinel:
        return redis.Redis.from_url(target.url, **kw)
    sentinels, sentinel_kwargs, master, kwargs = _master_plan(target, kw, asyncio=False)
    return Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs).master_for(master, **kwargs)


def async_redis_client(url: str | dict | None = None, **kw) -> aioredis.Redis:
    """The ``redis.asyncio`` twin of :func:`redis_client` (one per event loop: an asyncio
    connection belongs to the loop that opened it)."""
    target = _target(url)
    kw = _command_timeouts(kw)
    if isinstance(target, RedisURL) and not target.is_sentinel:
        return aioredis.from_url(target.url, **kw)
    sentinels, sentinel_kwargs, master, kwargs = _master_plan(target, kw, asyncio=True)
    kwargs["connection_class"] = _lost_aware_class(kwargs)
    return AsyncSentinel(sentinels, sentinel_kwargs=sentinel_kwargs).master_for(master, **kwargs)


def _lost_aware_class(kwargs: dict) -> type:
    # SentinelConnectionPool picks the TLS class from "ssl" only when given no class.
    if kwargs.pop("ssl", False):
        return LostAwareSentinelSSLConnection
    return LostAwareSentinelConnection


def cache_settings(url: str) -> dict[str, Any]:
    """``CACHES["default"]`` for django-redis.

    Sentinel: the ``SentinelConnectionFactory`` with the plain ``DefaultClient`` rather than
    django-redis's ``SentinelClient``, which sends reads to replicas. Throttle counters,
    login lockouts and book snapshots are read right after they are written, so every
    command goes to the master.
    """
    target = parse_redis_url(url)
    options: dict[str, Any] = {
        "CLIENT_CLASS": "django_redis.client.DefaultClient",
        "SOCKET_CONNECT_TIMEOUT": 2,
        "SOCKET_TIMEOUT": 2,
    }
    location = target.url
    if target.is_sentinel:
        auth = ""
        if target.password is not None:
            auth = f"{quote(target.username or '', safe='')}:{quote(target.password, safe='')}@"
        # django-redis reads the master's name from the URL's host part.
        location = f"redis://{auth}{target.master}/{target.db}"
        pool_kwargs: dict[str, Any] = {
            "socket_keepalive": True,
            "socket_keepalive_options": _KEEPALIVE_OPTIONS,
            "retry": retry_policy(MASTER_RETRIES),
        }
        if target.ssl:
            pool_kwargs["ssl"] = True
        options.update(
            CONNECTION_FACTORY="django_redis.pool.SentinelConnectionFactory",
            SENTINELS=list(target.sentinels),
            SENTINEL_KWARGS=target.sentinel_kwargs(),
            CONNECTION_POOL_KWARGS=pool_kwargs,
        )
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": location,
        "KEY_PREFIX": "exchange",
        "OPTIONS": options,
    }


def channel_layer_hosts(url: str) -> list:
    """``CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]`` for channels-redis: the URL itself,
    or for Sentinel the dict channels-redis turns into a ``SentinelConnectionPool``."""
    target = parse_redis_url(url)
    if not target.is_sentinel:
        return [target.url]
    return [
        {
            "sentinels": list(target.sentinels),
            "master_name": target.master,
            "sentinel_kwargs": target.sentinel_kwargs(asyncio=True),
            "retry": retry_policy(MASTER_RETRIES, asyncio=True),
            # A command to a master gone silent (its host powered off) fails after 2 s and
            # the next one asks the sentinels. The subscriber's reads are not cut by it:
            # channels-redis polls them with a timeout of their own (get_message, 0.1 s);
            # keepalive and the health check's PING end its connection to a powered-off
            # host, which the connection class reports as lost (``_LostAware``).
            "socket_timeout": COMMAND_SOCKET_TIMEOUT,
            "socket_connect_timeout": SENTINEL_SOCKET_TIMEOUT,
            "socket_keepalive": True,
            "socket_keepalive_options": _KEEPALIVE_OPTIONS,
            "health_check_interval": PUBSUB_HEALTH_CHECK_SECONDS,
            "connection_class": (
                LostAwareSentinelSSLConnection if target.ssl else LostAwareSentinelConnection
            ),
            **target.master_kwargs(),
        }
    ]


def _kombu_sentinel_url(target: RedisURL) -> str:
    auth = ""
    if target.password is not None:
        auth = f"{quote(target.username or '', safe='')}:{quote(target.password, safe='')}@"
    return ";".join(
        f"sentinel://{auth}{f'[{host}]' if ':' in host else host}:{port}/{target.db}"
        for host, port in target.sentinels
    )


def celery_broker_settings(url: str, result_url: str | None = None) -> dict[str, Any]:
    """Celery's broker and result-backend settings (lower-case names, for ``CELERY_`` +
    upper-case in ``settings.py``) from ``url`` and ``result_url`` (default ``url``).

    A URL that is not Redis (``amqp://``...) passes through untouched. A Sentinel URL becomes
    kombu's and Celery's ``sentinel://h1:p1/db;sentinel://h2:p2/db`` with the master's name
    in the transport options."""
    result_url = url if result_url is None else result_url
    out: dict[str, Any] = {
        "broker_url": url,
        "broker_transport_options": {},
        "result_backend": result_url,
        "result_backend_transport_options": {},
    }
    for key, value in (("broker", url), ("result_backend", result_url)):
        if not (isinstance(value, str) and value.lower().startswith("sentinel://")):
            continue
        target = parse_redis_url(value)
        url_key = "broker_url" if key == "broker" else "result_backend"
        out[url_key] = _kombu_sentinel_url(target)
        options = {"master_name": target.master, "sentinel_kwargs": target.sentinel_kwargs()}
        if key == "broker":
            # kombu passes these to the master's connections (Celery's result backend takes
            # its socket settings from redis_* settings instead, and retries on its own).
            options.update(
                socket_connect_timeout=2,
                socket_keepalive=True,
                socket_keepalive_options=_KEEPALIVE_OPTIONS,
            )
        out[f"{key}_transport_options"] = options
        if target.ssl:
            import ssl

            out["broker_use_ssl" if key == "broker" else "redis_backend_use_ssl"] = {
                "ssl_cert_reqs": ssl.CERT_REQUIRED
            }
    return out


def redis_address(url: str) -> tuple[str, int] | None:
    """A TCP address to probe for ``url`` (the first sentinel for Sentinel URLs), or None for
    a unix socket."""
    target = parse_redis_url(url)
    if target.is_sentinel:
        return target.sentinels[0]
    if target.scheme == "unix":
        return None
    parts = urlsplit(target.url)
    return parts.hostname, parts.port or 6379
