"""Reads off the primary: which database serves a read (ARCHITECTURE §8, CONFIGURATION.md
"Read replicas").

Nothing goes to a replica unless its call site says the read tolerates staleness. Django's
router sees only a model, not whether the caller can live with data a few seconds old, so
the decision is made where the read is written: a selector of public market history, a
statement or an operator report runs under :func:`using_replica` (or the
:func:`replica_safe` decorator, or the :func:`replica_reads` block), and the router sends the
reads of that block, and only those, to the replica chosen for it. Everything else, and
every write, goes to ``default``: a user's orders and balances, order entry, anything inside
a transaction.

A replica is chosen only when

- replicas are configured (``DATABASE_REPLICA_URLS``, aliases ``replica_0``, ``replica_1``...);
- no transaction is open on the primary (a read there must see its own writes);
- the user the read is for, if any, has not changed anything in the last
  ``DATABASE_READ_YOUR_WRITES_SECONDS`` (read-your-writes): every write request and every
  private event (the matcher's fills, deposits, cancels) pins its user to the primary for
  that long, with a key in Redis, so the pin holds on every web and ws host;
- the replica answers and its replay lag is at most ``DATABASE_REPLICA_MAX_LAG_SECONDS``.

Health and lag are probed at most every ``DATABASE_REPLICA_CHECK_SECONDS`` per process; a
replica that fails is left alone for ``DATABASE_REPLICA_RETRY_SECONDS``. A replica that fails
in the middle of a :func:`using_replica` read is marked down and the read runs again on the
primary, so a replica going away costs a slower answer, never an error.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

logger = logging.getLogger(__name__)

REPLICA_PREFIX = "replica_"
PIN_KEY = "exchange:db-pin:{user_id}"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

# The alias the reads of the current block go to; None outside any replica_reads block.
_read_alias: ContextVar[str | None] = ContextVar("db_read_alias", default=None)

P = ParamSpec("P")
R = TypeVar("R")


# --- the router ----------------------------------------------------------------------------


class ReplicaRouter:
    """Reads go where the enclosing :func:`replica_reads` block says, else to the primary;
    writes and migrations only to the primary.

    ``db_for_read`` answers ``default`` rather than None outside a block: with None, Django
    would follow the instance hint, and a related object read from a row that came from a
    replica would be read from that replica too, outside any block that allowed it.
    """

    def db_for_read(self, model, **hints) -> str:
        return _read_alias.get() or DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        # Every alias holds the same data (replicas are copies of the primary).
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS


# --- replica health ------------------------------------------------------------------------


@dataclass(slots=True)
class _State:
    checked_at: float = 0.0
    usable: bool = False
    down: bool = False
    lag_seconds: float | None = None


_states: dict[str, _State] = {}
_probe_lock = threading.Lock()
_rotation = itertools.count()


def replica_aliases() -> list[str]:
    """The configured replica aliases, in order (none when ``DATABASE_REPLICA_URLS`` is empty)."""
    return [alias for alias in connections.settings if alias.startswith(REPLICA_PREFIX)]


def replica_states_reset() -> None:
    """Forget every probe result, so the next read probes again (tests, and after an
    operator changes the replicas)."""
    _states.clear()


# A replica is caught up when it has replayed the primary's WAL position read just before
# (both taken in this probe): then it holds every transaction committed before the probe,
# however long ago the last one was. Only when it is behind does the replay time mean
# anything: now() - pg_last_xact_replay_timestamp() bounds the age of the oldest commit it
# lacks. Used alone, that difference grows on an idle primary while the replica is fully
# caught up, and pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() alone would call a
# replica that lost its connection to the primary fresh. The primary's position settles
# both. The replay time comes from the primary's clock and now() from the replica's, so
# hosts must keep their clocks in sync (NTP) for the figure to be right.
_LAG_SQL = (
    "SELECT pg_is_in_recovery(), "
    "COALESCE(pg_last_wal_replay_lsn() >= %s::pg_lsn, false), "
    "EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8"
)


def _primary_wal_position() -> str:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        return cursor.fetchone()[0]


def replica_lag_seconds(alias: str) -> float:
    """``alias``'s replay lag in seconds now (0 when it has replayed everything the primary
    had written). Raises ``DatabaseError`` if it cannot be asked or is not a replica."""
    position = _primary_wal_position()
    with _fresh_connection(alias).cursor() as cursor:
        cursor.execute(_LAG_SQL, [position])
        in_recovery, caught_up, age = cursor.fetchone()
    if not in_recovery:
        # Promoted, or a primary named by mistake: it takes writes of its own that the
        # primary does not have, so it is no copy of ours.
        raise DatabaseError(f"{alias} is not in recovery: not a replica of the primary")
    if caught_up:
        return 0.0
    return float("inf") if age is None else max(age, 0.0)


def _close_quietly(alias: str) -> None:
    with contextlib.suppress(Exception):
        connections[alias].close()


def _mark_down(alias: str, exc: BaseException) -> None:
    state = _states.get(alias)
    if state is None or not state.down:
        logger.warning("read replica %s is unusable, reads go to the primary: %s", alias, exc)
    _states[alias] = _State(checked_at=time.monotonic(), usable=False, down=True)
    _close_quietly(alias)


def _fresh_connection(alias: str):
    """``alias``'s connection, opened; a kept one the server has dropped since (a replica
    restarted) is replaced rather than failing the next statement."""
    connection = connections[alias]
    if connection.connection is not None and not connection.is_usable():
        connection.close()
    connection.ensure_connection()
    return connection


def _fit(alias: str) -> bool:
    """Whether ``alias`` may serve a read now: from the last probe while it is fresh, else
    from a new one (one thread probes; the others keep the last answer meanwhile)."""
    state = _states.get(alias)
    now = time.monotonic()
    if state is not None:
        wait = settings.DATABASE_REPLICA_RETRY_SECONDS if state.down else 0.0
        wait = max(wait, settings.DATABASE_REPLICA_CHECK_SECONDS)
        if now - state.checked_at < wait:
            return state.usable
    if not _probe_lock.acquire(blocking=state is None):
        return state.usable
    try:
        try:
            lag = replica_lag_seconds(alias)
        except DatabaseError as exc:
            _mark_down(alias, exc)
            return False
        usable = lag <= settings.DATABASE_REPLICA_MAX_LAG_SECONDS
        if state is not None and state.usable and not usable:
            logger.warning("read replica %s lags %.1f s, reads go to the primary", alias, lag)
        _states[alias] = _State(time.monotonic(), usable, False, lag)
        return usable
    finally:
        _probe_lock.release()


# --- read-your-writes ----------------------------------------------------------------------


def _redis():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def users_pin_to_primary(user_ids: Iterable[int]) -> None:
    """Keep these users' reads on the primary for ``DATABASE_READ_YOUR_WRITES_SECONDS``
    (read-your-writes, on every host): one Redis round trip. Nothing happens when no replica
    is configured. Never raises: if Redis cannot take the pin it cannot answer for it
    either, and an unanswered pin counts as set (:func:`user_pinned`)."""
    window = settings.DATABASE_READ_YOUR_WRITES_SECONDS
    if window <= 0 or not replica_aliases():
        return
    ids = {int(user_id) for user_id in user_ids if user_id is not None}
    if not ids:
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        for user_id in ids:
            pipe.set(PIN_KEY.format(user_id=user_id), 1, px=max(1, int(window * 1000)))
        pipe.execute()
    except Exception as exc:
        logger.warning("read-your-writes pin not set (Redis failed: %s)", exc)


def user_pinned(user_id: int) -> bool:
    """Whether ``user_id`` changed something within the read-your-writes window. True when
    Redis cannot tell: a stale read of one's own orders is the failure this exists to stop."""
    if settings.DATABASE_READ_YOUR_WRITES_SECONDS <= 0:
        return False
    try:
        return bool(_redis().exists(PIN_KEY.format(user_id=user_id)))
    except Exception as exc:
        logger.warning("read-your-writes pin unknown (Redis failed: %s): primary", exc)
        return True


def _user_id(user) -> int | None:
    if user is None:
        return None
    if isinstance(user, int):
        return user
    return user.pk if getattr(user, "is_authenticated", True) else None


class ReadYourWritesMiddleware:
    """Pins the user of a successful write request (POST, PUT, PATCH, DELETE) to the primary
    before the answer leaves, so the client's next read, on whichever host, sees the write.
    Costs nothing on reads, or when no replica is configured."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method not in _SAFE_METHODS and response.status_code < 400 and replica_aliases():
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                users_pin_to_primary([user.pk])
        return response


# --- choosing and using a replica ----------------------------------------------------------


def replica_for(*, user=None) -> str:
    """The alias a staleness-tolerant read (for ``user``, a User or id, when it is one of
    theirs) should use now: a fit replica, else ``default``. See the module docstring for
    the rules."""
    aliases = replica_aliases()
    if not aliases or _read_alias.get() is not None:
        return _read_alias.get() or DEFAULT_DB_ALIAS
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    user_id = _user_id(user)
    if user_id is not None and user_pinned(user_id):
        return DEFAULT_DB_ALIAS
    start = next(_rotation) % len(aliases)
    for alias in aliases[start:] + aliases[:start]:
        if _fit(alias):
            return alias
    return DEFAULT_DB_ALIAS


@contextlib.contextmanager
def replica_reads(*, user=None) -> Iterator[str]:
    """Send the ORM reads of this block to a replica when one is fit (:func:`replica_for`);
    yields the alias chosen (use it for raw SQL: ``connections[alias].cursor()``). The block
    must only read. A replica failing inside it raises; :func:`using_replica` retries on the
    primary instead."""
    alias = replica_for(user=user)
    token = _read_alias.set(alias)
    try:
        yield alias
    finally:
        _read_alias.reset(token)


def using_replica(func: Callable[P, R], /, *args: P.args, user=None, **kwargs: P.kwargs) -> R:
    """``func(*args, **kwargs)`` with its reads on a fit replica (``user``: whose data it
    reads, for read-your-writes). If a database error interrupts it there, ``func`` runs
    again on the primary, the replica marked down first if its connection broke: so ``func``
    must only read, and must not return a lazy queryset. (A replica's own refusals, such as a
    query cancelled by a conflict with recovery, leave its connection usable; an error that
    was the primary's comes back from the second run.)"""
    with replica_reads(user=user) as alias:
        if alias == DEFAULT_DB_ALIAS:
            return func(*args, **kwargs)
        try:
            return func(*args, **kwargs)
        except DatabaseError as exc:
            if not connections[alias].is_usable():
                _mark_down(alias, exc)
    token = _read_alias.set(DEFAULT_DB_ALIAS)
    try:
        return func(*args, **kwargs)
    finally:
        _read_alias.reset(token)


def replica_safe(
    func: Callable[P, R] | None = None, *, user_arg: str | None = None
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a read-only selector whose result may be a little stale: it runs through
    :func:`using_replica`. ``user_arg`` names its keyword argument holding the user whose
    data it reads (read-your-writes applies to them)."""

    def decorate(inner: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(inner)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            user = kwargs.get(user_arg) if user_arg else None
            return using_replica(inner, *args, user=user, **kwargs)

        return wrapper

    return decorate(func) if func is not None else decorate


def replica_for_stream(*, user=None) -> str:
    """:func:`replica_for`, its connection opened at once: for a read that streams rows
    out as it reads them and so cannot run again once it has begun. A replica that cannot
    be reached is marked down here, before the first row, and the read starts on the
    primary instead."""
    alias = replica_for(user=user)
    if alias != DEFAULT_DB_ALIAS:
        try:
            _fresh_connection(alias)
        except DatabaseError as exc:
            _mark_down(alias, exc)
            return DEFAULT_DB_ALIAS
    return alias


def read_alias() -> str:
    """The alias reads go to at this point (``default`` outside a replica block)."""
    return _read_alias.get() or DEFAULT_DB_ALIAS


def replicas_probe() -> list[dict[str, Any]]:
    """Each replica's state for ``/health``: probed now unless a probe is still fresh (the
    same cache and back-off reads use), then reported as ``replica_status`` does."""
    for alias in replica_aliases():
        _fit(alias)
    return replica_status()


def replica_status() -> list[dict[str, Any]]:
    """Each replica's last probe (for the health page and operators): alias, usable, down,
    lag in seconds."""
    result = []
    for alias in replica_aliases():
        state = _states.get(alias) or _State()
        result.append(
            {
                "alias": alias,
                "usable": state.usable,
                "down": state.down,
                "lag_seconds": state.lag_seconds,
            }
        )
    return result
