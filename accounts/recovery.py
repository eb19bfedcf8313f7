"""Everything an account holder does by email: confirm the address, reset a forgotten
password, change the password, move the account to a new address.

Links carry signed, expiring tokens: Django's password-reset token (single use: it hashes the
password and the last login, so it dies with either) and ``django.core.signing`` payloads for
the address links (they name the address they confirm, so they die when it changes).

Requests that send email to an address someone typed (reset, resend) answer the same whether
or not an account has it, and are limited per client address and per typed address. Those
limits live in Redis, like the queue that sends the mail: with Redis down such requests are
refused (503), never let through unlimited.
"""

import hashlib
import logging
import math

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from accounts import lockout, sessions
from accounts.exceptions import (
    AccountFrozen,
    EmailRequestsThrottled,
    EmailTaken,
    LinkInvalid,
    RequestsUnavailable,
)
from accounts.models import User, normalize_email
from accounts.notifications import (
    notify_email_change_requested,
    notify_email_changed,
    notify_password_changed,
)
from accounts.twofactor import two_factor_require
from exchange_site.mail import email_send_on_commit, site_url

logger = logging.getLogger("accounts")

_VERIFY_SALT = "accounts.recovery.verify-email"
_EMAIL_CHANGE_SALT = "accounts.recovery.email-change"


def _hours(seconds: int) -> int:
    return max(1, math.ceil(seconds / 3600))


# --- Limits on emailing requests ---------------------------------------------------------


def _budget_spend(kind: str, ident: str, limit: int) -> bool:
    """Count one request of ``kind`` against ``ident`` in the hour; False once over
    ``limit``. Raises ``RequestsUnavailable`` (503) when the cache cannot count."""
    if limit <= 0:
        return True
    key = f"email-budget:{kind}:{hashlib.sha256(ident.encode()).hexdigest()[:32]}"
    try:
        cache.add(key, 0, timeout=3600)
        return cache.incr(key) <= limit
    except Exception as exc:
        logger.warning("%s request refused: the cache failed (%s)", kind, exc)
        raise RequestsUnavailable() from exc


def _request_allowed(kind: str, *, email: str, ip: str | None) -> bool:
    """The per-address limit (a 429 would say nothing about the account, so it is one) and
    the per-typed-address limit (silent: the answer must not change with the account)."""
    if ip and not _budget_spend(f"{kind}:ip", ip, settings.ACCOUNT_EMAIL_REQUESTS_PER_IP):
        raise EmailRequestsThrottled(details={"retry_after": 3600})
    return _budget_spend(f"{kind}:email", email, settings.ACCOUNT_EMAILS_PER_ADDRESS)


# --- Email verification ------------------------------------------------------------------


def email_verification_queue(user: User) -> None:
    """Queue the address-confirmation email (after commit), with no limit: for sign-up."""
    token = signing.dumps({"u": user.pk, "e": user.email}, salt=_VERIFY_SALT)
    email_send_on_commit(
        to=user.email,
        template="verify_email",
        context={
            "username": user.username,
            "verify_url": site_url(reverse("verify-email", args=[token])),
            "expires_hours": _hours(settings.EMAIL_VERIFICATION_TTL_SECONDS),
        },
    )


def email_verification_send(*, user: User) -> bool:
    """Email ``user`` a link that confirms their address (at sign-up, and on request).
    Returns False when nothing was sent: already verified, or over the hourly limit."""
    if user.is_verified or not _budget_spend(
        "verify:email", user.email, settings.ACCOUNT_EMAILS_PER_ADDRESS
    ):
        return False
    email_verification_queue(user)
    return True


def email_verification_request(*, email: str, ip: str | None) -> None:
    """Resend the confirmation link to ``email`` when an unverified account has it. Says
    nothing either way; limited per client address (429) and per typed address (silently)."""
    email = normalize_email(email)
    if not _request_allowed("verify", email=email, ip=ip):
        return
    user = User.objects.filter(email=email, is_active=True, is_system=False).first()
    if user is not None and not user.is_verified:
        email_verification_queue(user)


@transaction.atomic
def email_verify(*, token: str) -> User:
    """Mark the address of a verification link confirmed (again is fine). Raises
    ``LinkInvalid`` (400) for a tampered or expired link, or one for an address the account
    no longer has."""
    try:
        payload = signing.loads(
            token, salt=_VERIFY_SALT, max_age=settings.EMAIL_VERIFICATION_TTL_SECONDS
        )
    except signing.BadSignature as exc:
        raise LinkInvalid() from exc
    user = User.objects.select_for_update().filter(pk=payload.get("u"), is_active=True).first()
    if user is None or user.email != payload.get("e"):
        raise LinkInvalid()
    if not user.is_verified:
        user.is_verified = True
        user.email_verified_at = timezone.now()
        user.save(update_fields=["is_verified", "email_verified_at", "updated_at"])
    return user


# --- Password reset ----------------------------------------------------------------------


def password_reset_request(*, email: str, ip: str | None) -> None:
    """Email a single-use, expiring reset link to ``email`` when an active account has it.
    The same silence whether it does or not; limited per client address (429) and per typed
    address (silently)."""
    email = normalize_email(email)
    if not _request_allowed("reset", email=email, ip=ip):
        return
    user = User.objects.filter(email=email, is_active=True, is_system=False).first()
    if user is None:
        return
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    email_send_on_commit(
        to=user.email,
        template="password_reset",
        context={
            "username": user.username,
            "reset_url": site_url(reverse("password-reset-confirm", args=[uid, token])),
            "expires_hours": _hours(settings.PASSWORD_RESET_TIMEOUT),
        },
    )


def password_reset_user(*, uid: str, token: str) -> User | None:
    """The account a reset link is for, or None when the link is bad, used or expired."""
    try:
        user_id = int(force_str(urlsafe_base64_decode(uid)))
    except (TypeError, ValueError, OverflowError):
        return None
    user = User.objects.filter(pk=user_id, is_active=True, is_system=False).first()
    if user is None or not default_token_generator.check_token(user, token):
        return None
    return user


def _password_validate(password: str, user: User, field: str) -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from exc


def _password_set(*, user: User, password: str, via: str, request, keep_session_id=None):
    user.set_password(password)
    user.save(update_fields=["password", "updated_at"])
    sessions.auth_sessions_revoke_all(
        user=user, keep_session_id=keep_session_id, reason=f"password_{via}"
    )
    ip, user_agent = sessions.request_client(request)
    notify_password_changed(user=user, via=via, ip=ip, user_agent=user_agent)


@transaction.atomic
def password_reset_complete(*, uid: str, token: str, new_password: str, request=None) -> User:
    """Set a new password from a reset link. Every session and refresh token of the account
    ends, the login lockout of the account is lifted, and the owner is told by email.

    Raises ``LinkInvalid`` (400) for a bad, used or expired link, and ``ValidationError``
    keyed ``new_password`` when a password validator refuses. Locks the user row.
    """
    user = password_reset_user(uid=uid, token=token)
    if user is None:
        raise LinkInvalid()
    user = User.objects.select_for_update().get(pk=user.pk)
    if not default_token_generator.check_token(user, token):
        raise LinkInvalid()  # a racing reset with the same link won
    _password_validate(new_password, user, "new_password")
    _password_set(user=user, password=new_password, via="reset", request=request)
    lockout.login_success_record(account=lockout.login_account_ident(login="", user=user))
    return user


# --- Changes from a logged-in account ----------------------------------------------------


def _reauthenticate(*, user: User, password: str, otp_code: str | None, ip: str | None):
    """The password (counted by the login lockout when wrong) and, with two-factor
    authentication on, a current code: what a change of credentials asks for."""
    if user.is_frozen:
        raise AccountFrozen()
    lockout.password_recheck(user=user, password=password, ip=ip, field="current_password")
    two_factor_require(user=user, otp_code=otp_code, ip=ip)


@transaction.atomic
def password_change(
    *,
    user: User,
    current_password: str,
    new_password: str,
    otp_code: str | None = None,
    request=None,
    keep_session_id: int | None = None,
) -> User:
    """Change the password: needs the current one and, with two-factor authentication on, a
    code. Every other session and refresh token ends (``keep_session_id``, the caller's own,
    stays); the owner is told by email.

    Raises ``PasswordIncorrect`` (403), ``OtpRequired`` / ``OtpInvalid`` (403),
    ``LoginRateLimited`` (429), ``AccountFrozen`` (403) and ``ValidationError`` keyed
    ``new_password``. Locks the user row, then the two-factor device.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    ip, _user_agent = sessions.request_client(request)
    _reauthenticate(user=user, password=current_password, otp_code=otp_code, ip=ip)
    _password_validate(new_password, user, "new_password")
    _password_set(
        user=user,
        password=new_password,
        via="change",
        request=request,
        keep_session_id=keep_session_id,
    )
    return user


@transaction.atomic
def email_change_request(
    *, user: User, new_email: str, password: str, otp_code: str | None = None, request=None
) -> str:
    """Ask to move the account to ``new_email``: a confirmation link goes to the new address
    and a notice to the current one. Nothing changes until the link is followed.

    Raises like ``password_change``, plus ``EmailTaken`` (409) and ``ValidationError`` keyed
    ``new_email`` for the current address. Returns the normalised new address.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    new_email = normalize_email(new_email)
    ip, _user_agent = sessions.request_client(request)
    _reauthenticate(user=user, password=password, otp_code=otp_code, ip=ip)
    if new_email == user.email:
        raise ValidationError({"new_email": ["This is already your address."]})
    if User.objects.filter(email=new_email).exists():
        raise EmailTaken(details={"field": "new_email"})
    token = signing.dumps(
        {"u": user.pk, "old": user.email, "new": new_email}, salt=_EMAIL_CHANGE_SALT
    )
    email_send_on_commit(
        to=new_email,
        template="email_change_confirm",
        context={
            "username": user.username,
            "new_email": new_email,
            "confirm_url": site_url(reverse("email-change-confirm", args=[token])),
            "expires_hours": _hours(settings.EMAIL_CHANGE_TTL_SECONDS),
        },
    )
    notify_email_change_requested(user=user, new_email=new_email, ip=ip)
    return new_email


@transaction.atomic
def email_change_confirm(*, token: str) -> User:
    """Move the account to the address a confirmation link was sent to (which proves it is
    the owner's, so it is verified), and tell the old address.

    Raises ``LinkInvalid`` (400) for a tampered or expired link or when the account's address
    changed since, and ``EmailTaken`` (409) when another account took the address meanwhile.
    Locks the user row.
    """
    try:
        payload = signing.loads(
            token, salt=_EMAIL_CHANGE_SALT, max_age=settings.EMAIL_CHANGE_TTL_SECONDS
        )
    except signing.BadSignature as exc:
        raise LinkInvalid() from exc
    user = User.objects.select_for_update().filter(pk=payload.get("u"), is_active=True).first()
    if user is None or user.email != payload.get("old"):
        raise LinkInvalid()
    old_email, user.email = user.email, payload["new"]
    user.is_verified = True
    user.email_verified_at = timezone.now()
    try:
        with transaction.atomic():
            user.save(update_fields=["email", "is_verified", "email_verified_at", "updated_at"])
    except IntegrityError as exc:
        raise EmailTaken(details={"field": "email"}) from exc
    notify_email_changed(user=user, old_email=old_email)
    return user
