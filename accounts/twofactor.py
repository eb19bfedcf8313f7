"""Two-factor authentication (TOTP, RFC 6238) and its recovery codes: the services that write
them, and the one check every protected action calls (``two_factor_require``).

Codes are 6 digits over 30-second steps (what every authenticator app speaks), accepted one
step either side of the server's clock. A code is accepted once: the device remembers the last
step used and refuses it and anything older, so a code seen over a shoulder or in a log cannot
be replayed. Wrong codes count against the login lockout (``accounts.lockout.login_*``) of
the account and the client address, so six digits cannot be brute-forced.
"""

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time

import pyotp
import segno
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts import lockout
from accounts.audit import operator_action_record, reason_require
from accounts.crypto import secret_decrypt, secret_encrypt
from accounts.exceptions import (
    LoginLocked,
    LoginRateLimited,
    OtpInvalid,
    OtpRequired,
    TwoFactorStateConflict,
    TwoFactorUnavailable,
)
from accounts.models import RecoveryCode, TwoFactorDevice, User
from accounts.notifications import notify_two_factor_changed

logger = logging.getLogger(__name__)

RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_LENGTH = 16
# No 0/o, 1/l/i: codes are read off paper. 31 symbols ** 16 = 79 bits.
RECOVERY_CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
TOTP_INTERVAL = 30
# The name authenticator apps list the account under.
TOTP_ISSUER = "Exchange"
TOTP_DIGITS = 6
# Steps either side of the current one that still count (clock drift, typing time).
TOTP_TOLERANCE_STEPS = 1
OTP_CODE_MAX_LENGTH = 64

_TOTP_PATTERN = re.compile(r"[0-9]{6}")


def _normalize(code: str | None) -> str:
    """Spaces and dashes are how people copy codes ("123 456", "abcd-efgh-..."): ignore them."""
    return re.sub(r"[\s-]+", "", code or "").lower()[:OTP_CODE_MAX_LENGTH]


def _recovery_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _recovery_codes_issue(user: User) -> list[str]:
    """Replace the user's recovery codes with ``RECOVERY_CODE_COUNT`` new ones; returns them
    in clear, the only time they exist outside the user's hands."""
    RecoveryCode.objects.filter(user=user).delete()
    codes = [
        "".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user=user, code_hash=_recovery_hash(code)) for code in codes
    )
    return ["-".join(code[i : i + 4] for i in range(0, len(code), 4)) for code in codes]


def _totp_match(device: TwoFactorDevice, code: str) -> int | None:
    """The time step ``code`` is valid for (within the tolerance, newer than the last one
    used), or None."""
    secret = secret_decrypt(device.secret_encrypted)
    if secret is None or not _TOTP_PATTERN.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL)
    current = int(time.time()) // TOTP_INTERVAL
    for step in range(current - TOTP_TOLERANCE_STEPS, current + TOTP_TOLERANCE_STEPS + 1):
        if device.last_used_step is not None and step <= device.last_used_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _recovery_use(user: User, code: str) -> bool:
    """Consume one unused recovery code; True if ``code`` was one. The conditional UPDATE makes
    two concurrent uses of one code let only one through."""
    if len(code) != RECOVERY_CODE_LENGTH:
        return False
    used = RecoveryCode.objects.filter(
        user=user, code_hash=_recovery_hash(code), used_at__isnull=True
    ).update(used_at=timezone.now())
    return used == 1


def _device_locked(user: User) -> TwoFactorDevice | None:
    # The row lock serialises two requests racing with one code: only one gets it accepted.
    return TwoFactorDevice.objects.select_for_update().filter(user=user).first()


def _code_accept(
    *, user: User, device: TwoFactorDevice, code: str, ip: str | None, recovery: bool
) -> bool:
    """Check ``code`` (a TOTP code, or a recovery code when ``recovery``) against the locked
    ``device`` and record the outcome in the login lockout. Raises ``LoginLocked`` while the
    account or the address is locked out; returns whether the code was accepted."""
    account = lockout.login_account_ident(login="", user=user)
    lockout.login_lock_check(account=account, ip=ip)
    _failure_budget_check(user)
    step = _totp_match(device, code)
    if step is not None:
        device.last_used_step = step
        device.save(update_fields=["last_used_step"])
    elif not (recovery and _recovery_use(user, code)):
        lockout.login_failure_record(account=account, ip=ip)
        _failure_budget_spend(user)
        return False
    lockout.login_success_record(account=account)
    _failure_budget_reset(user)
    return True


# The login lockout's count restarts after each lock, so on its own it lets a caller who knows
# the password try 5 codes every 15 minutes, forever. Consecutive wrong codes are also counted
# over OTP_FAILURE_WINDOW_SECONDS (a day): at OTP_MAX_FAILURES every code, right or wrong, is
# refused until the window ends or an operator resets two-factor authentication. Like the
# lockout it lives in the cache, so a refused request's rollback does not undo the count.
# While the cache is down every code is refused with TwoFactorUnavailable (503): the count
# cannot be kept, and without it codes could be guessed for as long as the outage lasts.


def _failure_key(user: User) -> str:
    return f"otp-failures:{user.pk}"


def _failure_budget_check(user: User) -> None:
    limit = settings.OTP_MAX_FAILURES
    if limit <= 0:
        return
    try:
        failures = cache.get(_failure_key(user), 0)
        wait = cache.ttl(_failure_key(user)) if failures >= limit else 0
    except Exception as exc:
        logger.warning("two-factor code refused: the cache failed (%s)", exc)
        raise TwoFactorUnavailable() from exc
    if failures >= limit:
        raise LoginLocked(retry_after=max(int(wait or 0), 1))


def _failure_budget_spend(user: User) -> None:
    if settings.OTP_MAX_FAILURES <= 0:
        return
    try:
        # add() starts the window at the first failure; incr() never extends it.
        cache.add(_failure_key(user), 0, timeout=settings.OTP_FAILURE_WINDOW_SECONDS)
        cache.incr(_failure_key(user))
    except Exception as exc:
        logger.warning("two-factor failure not counted, code refused: the cache failed (%s)", exc)
        raise TwoFactorUnavailable() from exc


def _failure_budget_reset(user: User) -> None:
    try:
        cache.delete(_failure_key(user))
    except Exception as exc:
        logger.warning("two-factor failure count not cleared: the cache failed (%s)", exc)


def _check(*, user: User, device: TwoFactorDevice, otp_code: str | None, ip, recovery=True):
    code = _normalize(otp_code)
    if not code:
        raise OtpRequired()
    try:
        accepted = _code_accept(user=user, device=device, code=code, ip=ip, recovery=recovery)
    except LoginLocked as exc:
        raise LoginRateLimited(exc.messages[0], details={"retry_after": exc.retry_after}) from exc
    if not accepted:
        raise OtpInvalid()


@transaction.atomic
def two_factor_require(*, user: User, otp_code: str | None, ip: str | None = None) -> None:
    """The step-up check of every protected action (login, withdrawal, API-key creation):
    nothing for a user without two-factor authentication; otherwise ``otp_code`` must be a
    current TOTP code or an unused recovery code (which is then used up).

    Locks the user's device row. Call it inside the action's transaction, so that a code is
    spent exactly when the action takes effect. Raises ``OtpRequired`` (403) without a code,
    ``OtpInvalid`` (403) for a wrong, expired or replayed one (counted as a failed login), and
    ``LoginRateLimited`` (429) while the account or address is locked out.
    """
    device = _device_locked(user)
    if device is None or not device.is_enabled:
        return
    _check(user=user, device=device, otp_code=otp_code, ip=ip)


@transaction.atomic
def two_factor_login_check(*, user: User, otp_code: str | None, ip: str | None) -> bool:
    """The login backend's second factor. Returns False when the account has no two-factor
    authentication (the password alone logs in), True when the code was accepted; raises like
    ``two_factor_require``. Locks the device row."""
    device = _device_locked(user)
    if device is None or not device.is_enabled:
        return False
    _check(user=user, device=device, otp_code=otp_code, ip=ip)
    return True


@transaction.atomic
def two_factor_enrol_begin(*, user: User) -> tuple[TwoFactorDevice, str, str]:
    """Start (or restart) enrolment: a new secret for the authenticator app. Returns
    ``(device, secret, provisioning_uri)``; the device stays pending, and codes are not asked
    anywhere, until ``two_factor_enrol_confirm``.

    Locks the user row (one device per user). Raises ``TwoFactorStateConflict`` (409) when
    two-factor authentication is already on: disable it first.
    """
    User.objects.select_for_update().filter(pk=user.pk).first()
    device = _device_locked(user)
    if device is not None and device.is_enabled:
        raise TwoFactorStateConflict("Two-factor authentication is already on.")
    secret = pyotp.random_base32()
    if device is None:
        device = TwoFactorDevice(user=user)
    device.secret_encrypted = secret_encrypt(secret)
    device.last_used_step = None
    device.save()
    uri = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL).provisioning_uri(
        name=user.email, issuer_name=TOTP_ISSUER
    )
    return device, secret, uri


def two_factor_pending_secret(*, user: User) -> tuple[str, str] | None:
    """``(secret, provisioning_uri)`` of a pending enrolment, to show it again; None when
    there is none (or it is already confirmed)."""
    device = TwoFactorDevice.objects.filter(user=user, confirmed_at__isnull=True).first()
    secret = secret_decrypt(device.secret_encrypted) if device else None
    if secret is None:
        return None
    uri = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL).provisioning_uri(
        name=user.email, issuer_name=TOTP_ISSUER
    )
    return secret, uri


def qr_code_data_uri(text: str) -> str:
    """``text`` as a QR code in an SVG data URI, for an ``<img>`` (rendered here: no network,
    no script). Dark modules on a white quiet zone, as scanners expect on any page theme."""
    svg = segno.make(text, error="m").svg_inline(scale=4, dark="#000", light="#fff", border=4)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


@transaction.atomic
def two_factor_enrol_confirm(*, user: User, otp_code: str | None, ip: str | None = None):
    """Finish enrolment with a first code from the app: two-factor authentication is on from
    now on. Returns the ``RECOVERY_CODE_COUNT`` recovery codes, in clear this once only.

    Locks the device row. Raises ``TwoFactorStateConflict`` (409) with no pending enrolment
    (or when it is already on), ``OtpRequired`` / ``OtpInvalid`` (403) for a missing or wrong
    code (recovery codes do not count here) and ``LoginRateLimited`` (429) when locked out.
    """
    device = _device_locked(user)
    if device is None:
        raise TwoFactorStateConflict("Start the enrolment first.")
    if device.is_enabled:
        raise TwoFactorStateConflict("Two-factor authentication is already on.")
    _check(user=user, device=device, otp_code=otp_code, ip=ip, recovery=False)
    device.confirmed_at = timezone.now()
    device.save(update_fields=["confirmed_at"])
    notify_two_factor_changed(user=user, enabled=True, ip=ip)
    return _recovery_codes_issue(user)


def _enabled_device_locked(user: User) -> TwoFactorDevice:
    device = _device_locked(user)
    if device is None or not device.is_enabled:
        raise TwoFactorStateConflict("Two-factor authentication is not on.")
    return device


@transaction.atomic
def two_factor_disable(
    *, user: User, password: str, otp_code: str | None, ip: str | None = None
) -> None:
    """Turn two-factor authentication off: needs the password and a current code (or a
    recovery code). The secret and the recovery codes are deleted.

    Locks the device row. Raises ``TwoFactorStateConflict`` (409) when it is not on,
    ``PasswordIncorrect`` (403, counted as a failed login), ``OtpRequired`` / ``OtpInvalid``
    (403) and ``LoginRateLimited`` (429) when locked out.
    """
    device = _enabled_device_locked(user)
    lockout.password_recheck(user=user, password=password, ip=ip, field="password")
    _check(user=user, device=device, otp_code=otp_code, ip=ip)
    RecoveryCode.objects.filter(user=user).delete()
    device.delete()
    notify_two_factor_changed(user=user, enabled=False, ip=ip)


@transaction.atomic
def two_factor_recovery_codes_regenerate(
    *, user: User, otp_code: str | None, ip: str | None = None
) -> list[str]:
    """Replace every recovery code (used or not) with ``RECOVERY_CODE_COUNT`` new ones, shown
    this once; needs a current code (or a recovery code).

    Locks the device row. Raises ``TwoFactorStateConflict`` (409) when it is not on,
    ``OtpRequired`` / ``OtpInvalid`` (403) and ``LoginRateLimited`` (429) when locked out.
    """
    device = _enabled_device_locked(user)
    _check(user=user, device=device, otp_code=otp_code, ip=ip)
    return _recovery_codes_issue(user)


@transaction.atomic
def two_factor_reset(*, user_id: int, actor: User, reason: str) -> User:
    """Operator action: remove a user's two-factor authentication (a lost phone and lost
    recovery codes), so the password alone logs in again until the user enrols anew.

    Locks the user row, then the device row. Recorded in the audit trail. Raises
    ``ValidationError`` without a reason and ``TwoFactorStateConflict`` (409) when the user
    has none (enabled or pending) or is the actor (an operator turns their own off with their
    password and a code, like everyone: a hijacked operator session must not skip that).
    """
    reason = reason_require(reason)
    user = User.objects.select_for_update().get(pk=user_id)
    if user.pk == actor.pk:
        raise TwoFactorStateConflict("You cannot reset your own two-factor authentication.")
    device = _device_locked(user)
    if device is None:
        raise TwoFactorStateConflict("This user has no two-factor authentication.")
    unused = RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()
    details = {
        "was_enabled": device.is_enabled,
        "confirmed_at": device.confirmed_at.isoformat() if device.confirmed_at else None,
        "recovery_codes_unused": unused,
    }
    RecoveryCode.objects.filter(user=user).delete()
    device.delete()
    _failure_budget_reset(user)
    if details["was_enabled"]:
        notify_two_factor_changed(user=user, enabled=False, ip=None)
    operator_action_record(
        actor=actor, action="two_factor_reset", target=user, reason=reason, details=details
    )
    return user
