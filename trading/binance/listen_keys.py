"""Binance's ``listenKey``s: a user's user-data stream, opened by ``POST
/api/v3/userDataStream``, kept alive by ``PUT``, closed by ``DELETE``, read at
``/api/v3/ws/<listenKey>`` (``marketdata.binance_user``).

As on Binance, a user has one active key at a time: ``POST`` returns it (and extends it) if
there is one. A key lives ``LISTEN_KEY_TTL_SECONDS`` (60 minutes) from its creation or last
keep-alive. Keys live in Redis only (``exchange:listen-key:<key>`` → user id, and
``exchange:listen-key:user:<id>`` → key, both with the key's expiry): losing Redis ends every
stream, and bots ask for a new key as they do on Binance.
"""

import secrets
import string

from django.conf import settings
from django_redis import get_redis_connection

from trading.binance import errors
from trading.binance.errors import BinanceError

KEY_LENGTH = 60
_ALPHABET = string.ascii_letters + string.digits
_KEY = "exchange:listen-key:{key}"
_USER = "exchange:listen-key:user:{user_id}"


def _redis():
    return get_redis_connection("default")


def _unknown() -> BinanceError:
    return BinanceError(errors.INVALID_LISTEN_KEY, "This listenKey does not exist.")


def _text(value) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def listen_key_create(*, user_id: int) -> str:
    """The user's active listenKey, extended; a new one if there is none. Raises what Redis
    raises (the view answers -1000)."""
    client = _redis()
    ttl = settings.LISTEN_KEY_TTL_SECONDS
    user_slot = _USER.format(user_id=user_id)
    key = _text(client.get(user_slot))
    if key is not None and client.expire(_KEY.format(key=key), ttl):
        client.expire(user_slot, ttl)
        return key
    key = "".join(secrets.choice(_ALPHABET) for _ in range(KEY_LENGTH))
    pipe = client.pipeline()
    pipe.set(_KEY.format(key=key), user_id, ex=ttl)
    pipe.set(user_slot, key, ex=ttl)
    pipe.execute()
    return key


def _owned(client, key: str | None, user_id: int) -> str:
    if not key or len(key) > 200:
        raise errors.mandatory("listenKey")
    owner = client.get(_KEY.format(key=key))
    if owner is None or int(owner) != user_id:
        raise _unknown()
    return key


def listen_key_keepalive(*, user_id: int, key: str | None) -> None:
    """Extend the user's ``key`` by ``LISTEN_KEY_TTL_SECONDS``; -1125 if it is not theirs
    or has expired."""
    client = _redis()
    key = _owned(client, key, user_id)
    ttl = settings.LISTEN_KEY_TTL_SECONDS
    client.expire(_KEY.format(key=key), ttl)
    client.expire(_USER.format(user_id=user_id), ttl)


def listen_key_close(*, user_id: int, key: str | None) -> None:
    """End the user's ``key``: its streams get ``listenKeyExpired`` and close. -1125 if it is
    not theirs or has expired."""
    client = _redis()
    key = _owned(client, key, user_id)
    pipe = client.pipeline()
    pipe.delete(_KEY.format(key=key))
    pipe.delete(_USER.format(user_id=user_id))
    pipe.execute()


def listen_key_user(key: str) -> int | None:
    """The owner of an active ``key``, or None."""
    if len(key) != KEY_LENGTH:
        return None
    owner = _redis().get(_KEY.format(key=key))
    return int(owner) if owner is not None else None
