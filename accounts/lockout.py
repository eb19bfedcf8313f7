"""Login lockout: failed logins and failed two-factor codes slow down, then lock, the
account and the client address they came from.

Counters and locks live in the cache (Redis), so every web process sees the same ones.
An account is counted by its id when the login names one and by the login text when it
does not: both lock alike, so a lock says nothing about whether an account exists.

While the cache is down the limits still hold: the check counts the failures in the login
history (``LoginEvent``, written by the login backend outside any transaction) instead. The
fallback locks at the same counts over the same window, without the slow-down before it.
"""

import hashlib
import logging
import math
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from accounts.exceptions import LoginLocked, LoginRateLimited, PasswordIncorrect
from accounts.models import LoginEvent, User
from accounts.sessions import account_key

logger = logging.getLogger("accounts")


def login_account_ident(*, login: str, user: User | None) -> str:
    return f"user:{user.pk}" if user is not None else f"login:{login.strip().lower()[:254]}"


def _login_keys(kind: str, ident: str) -> tuple[str, str]:
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    return f"login-fail:{kind}:{digest}", f"login-lock:{kind}:{digest}"


def _login_idents(account: str, ip: str | None) -> list[tuple[str, str, int]]:
    idents = [("account", account, settings.LOGIN_LOCKOUT_FAILURES)]
    if ip:
        idents.append(("ip", ip, settings.LOGIN_LOCKOUT_IP_FAILURES))
    return [entry for entry in idents if entry[2] > 0]


def _login_penalty(failures: int, lock_at: int) -> int:
    """Seconds a login must wait after ``failures``: nothing, a doubling slow-down over the
    last failures before the lock, then the lock."""
    if failures >= lock_at:
        return settings.LOGIN_LOCKOUT_SECONDS
    slow_steps = max(settings.LOGIN_LOCKOUT_FAILURES - settings.LOGIN_SLOWDOWN_AFTER, 0)
    slow_from = lock_at - slow_steps
    if settings.LOGIN_SLOWDOWN_SECONDS <= 0 or failures < slow_from:
        return 0
    return min(
        settings.LOGIN_SLOWDOWN_SECONDS * 2 ** (failures - slow_from),
        settings.LOGIN_LOCKOUT_SECONDS,
    )


def login_lock_check(*, account: str, ip: str | None) -> None:
    """Raise ``LoginLocked`` (with the seconds left) while the account or address must wait.

    Checked before the password, so a locked login refuses even the right one. With the
    cache down the failures are counted in the login history instead (``_history_wait``).
    """
    now = time.time()
    wait = 0.0
    try:
        for kind, ident, _lock_at in _login_idents(account, ip):
            until = cache.get(_login_keys(kind, ident)[1])
            if until is not None:
                wait = max(wait, float(until) - now)
    except Exception as exc:
        logger.warning("login lockout checked in the database: the cache failed (%s)", exc)
        wait = _history_wait(account=account, ip=ip)
    if wait > 0:
        raise LoginLocked(retry_after=math.ceil(wait))


_FAILED_OUTCOMES = (LoginEvent.Outcome.BAD_CREDENTIALS, LoginEvent.Outcome.OTP_INVALID)


def _history_wait(*, account: str, ip: str | None) -> float:
    """Seconds left on a lock computed from the login history: an identity with ``lock_at``
    failures in the last ``LOGIN_LOCKOUT_SECONDS`` (for the account: since its last
    successful login) waits until the oldest of them leaves the window."""
    window = settings.LOGIN_LOCKOUT_SECONDS
    now = timezone.now()
    wait = 0.0
    for kind, ident, lock_at in _login_idents(account, ip):
        since = now - timedelta(seconds=window)
        if kind == "account":
            key = account_key(ident)
            failures = LoginEvent.objects.filter(account_key=key)
            last_success = (
                failures.filter(outcome=LoginEvent.Outcome.SUCCESS)
                .order_by("-created_at")
                .values_list("created_at", flat=True)
                .first()
            )
            if last_success is not None and last_success > since:
                since = last_success
        else:
            failures = LoginEvent.objects.filter(ip=ident)
        recent = list(
            failures.filter(outcome__in=_FAILED_OUTCOMES, created_at__gt=since)
            .order_by("-created_at")
            .values_list("created_at", flat=True)[:lock_at]
        )
        if len(recent) >= lock_at:
            wait = max(wait, (recent[-1] + timedelta(seconds=window) - now).total_seconds())
    return wait


def login_failure_record(*, account: str, ip: str | None) -> None:
    """Count a failed login against the account and the address; slow them down or lock them
    once they reach their limits (settings ``LOGIN_*``). Counts expire
    ``LOGIN_LOCKOUT_SECONDS`` after the first failure."""
    window = settings.LOGIN_LOCKOUT_SECONDS
    try:
        for kind, ident, lock_at in _login_idents(account, ip):
            count_key, lock_key = _login_keys(kind, ident)
            cache.add(count_key, 0, timeout=window)
            failures = cache.incr(count_key)
            penalty = _login_penalty(failures, lock_at)
            if penalty:
                cache.set(lock_key, time.time() + penalty, timeout=penalty)
                if failures >= lock_at:
                    # The lock is the sentence: the count starts again after it.
                    cache.delete(count_key)
    except Exception as exc:
        logger.warning("failed login not counted: the cache failed (%s)", exc)


def login_success_record(*, account: str) -> None:
    """A successful login clears the account's count (the address's stays: one good account
    must not reset a guesser's count)."""
    try:
        cache.delete_many(list(_login_keys("account", account)))
    except Exception as exc:
        logger.warning("login count not cleared: the cache failed (%s)", exc)


def password_recheck(*, user: User, password: str | None, ip: str | None, field: str) -> None:
    """A signed-in user's password asked again before a sensitive change, under the login
    lockout: ``LoginRateLimited`` (429) while locked out, ``PasswordIncorrect`` (403, keyed
    ``field``, counted as a failed login) when wrong."""
    account = login_account_ident(login="", user=user)
    try:
        login_lock_check(account=account, ip=ip)
    except LoginLocked as exc:
        raise LoginRateLimited(exc.messages[0], details={"retry_after": exc.retry_after}) from exc
    if not user.check_password(password or ""):
        login_failure_record(account=account, ip=ip)
        raise PasswordIncorrect(details={"field": field})
