"""Everything that writes accounts: registration, login tokens, profile changes."""

import hmac
import ipaddress
import logging
import secrets
import string
from datetime import timedelta
from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.models import update_last_login
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework_simplejwt import settings as jwt_settings_module
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import sessions
from accounts.audit import operator_action_record, reason_require
from accounts.crypto import secret_decrypt, secret_encrypt
from accounts.exceptions import (
    AccountFrozen,
    AccountStateConflict,
    ApiKeyInvalid,
    ApiKeyIpNotAllowed,
    ApiKeyLimit,
    ApiKeyNotFound,
    ApiSignatureInvalid,
    EmailTaken,
    FrozenAccountLogin,
    InvalidCredentials,
    InvalidToken,
    LoginLocked,
    LoginOtpInvalid,
    LoginOtpRequired,
    LoginRateLimited,
    LoginUnavailable,
    OtpInvalidLogin,
    OtpRequiredLogin,
    TokenOwnerMismatch,
    TwoFactorUnavailable,
    UsernameTaken,
)
from accounts.hooks import freeze_hooks_run
from accounts.models import ApiKey, AuthSession, User, normalize_email
from accounts.notifications import notify_api_key_created
from accounts.recovery import email_verification_queue
from accounts.sessions import SESSION_CLAIM
from accounts.twofactor import two_factor_require

logger = logging.getLogger("accounts")


def _jwt_settings():
    # simplejwt rebinds its module-level settings object when SIMPLE_JWT changes, so read it
    # through the module each time rather than holding a stale import.
    return jwt_settings_module.api_settings


def _raise_if_taken(*, email: str | None = None, username: str | None = None, exclude_pk=None):
    users = User.objects.exclude(pk=exclude_pk) if exclude_pk else User.objects.all()
    if email is not None and users.filter(email=email).exists():
        raise EmailTaken(details={"field": "email"})
    if username is not None and users.filter(username__iexact=username).exists():
        raise UsernameTaken(details={"field": "username"})


@transaction.atomic
def user_register(*, email: str, username: str, password: str, full_name: str = "") -> User:
    """Create an account, and email it the link that confirms its address.

    Raises ``EmailTaken`` / ``UsernameTaken`` (409) when either is in use (case-insensitive),
    and Django's ``ValidationError`` keyed by ``password`` when a password validator refuses.
    Two racing registrations of one email both pass the check; the unique constraint stops
    the second, which is then reported as the same 409.
    """
    email = normalize_email(email)
    _raise_if_taken(email=email, username=username)
    candidate = User(email=email, username=username, full_name=full_name)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email, username=username, password=password, full_name=full_name
            )
    except IntegrityError:
        _raise_if_taken(email=email, username=username)
        raise
    email_verification_queue(user)
    return user


@transaction.atomic
def user_profile_update(*, user: User, username: str | None = None, full_name: str | None = None):
    """Change the caller's own username and/or full name.

    Raises ``UsernameTaken`` (409) when another account holds the username (case-insensitive).
    """
    fields = []
    if username is not None and username != user.username:
        _raise_if_taken(username=username, exclude_pk=user.pk)
        user.username = username
        fields.append("username")
    if full_name is not None and full_name != user.full_name:
        user.full_name = full_name
        fields.append("full_name")
    if fields:
        try:
            with transaction.atomic():
                user.save(update_fields=[*fields, "updated_at"])
        except IntegrityError as exc:
            raise UsernameTaken(details={"field": "username"}) from exc
    return user


def auth_tokens_issue(
    *, user: User, auth_session: AuthSession | None = None, request=None
) -> dict[str, Any]:
    """A fresh access/refresh pair for ``user`` in the refresh-token family ``auth_session``
    (its id is the ``sid`` claim of both; a new family when None); the refresh token is
    recorded as outstanding."""
    jwt_settings = _jwt_settings()
    if auth_session is None:
        auth_session = sessions.auth_session_start(
            user=user, kind=AuthSession.Kind.API, request=request, expires_at=_refresh_expiry()
        )
    refresh = RefreshToken.for_user(user)
    refresh[SESSION_CLAIM] = auth_session.pk
    # for_user recorded the token before it had its family: store the token as issued, which
    # is what revoking a family reads (accounts.sessions._refresh_tokens_blacklist).
    OutstandingToken.objects.filter(jti=refresh[jwt_settings.JTI_CLAIM]).update(token=str(refresh))
    access = refresh.access_token
    # simplejwt fixes the lifetime at import; read the setting now so `expires_in` is true.
    access.set_exp(lifetime=jwt_settings.ACCESS_TOKEN_LIFETIME)
    return {
        "access_token": str(access),
        "refresh_token": str(refresh),
        "token_type": "bearer",
        "expires_in": int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
        "refresh_expires_in": int(jwt_settings.REFRESH_TOKEN_LIFETIME.total_seconds()),
    }


def _refresh_expiry():
    return timezone.now() + _jwt_settings().REFRESH_TOKEN_LIFETIME


def auth_login(
    *,
    login: str,
    password: str,
    otp_code: str | None = None,
    request: HttpRequest | None = None,
) -> dict:
    """Check a login (email or username) and password, and with two-factor authentication on
    the ``otp_code`` too (``accounts.twofactor``); open a refresh-token family
    (``AuthSession``) and return its first token pair.

    Raises ``InvalidCredentials`` (401) with one message for an unknown login, a wrong
    password and a deactivated account alike, and ``AccountFrozen`` (403) for the right
    password of a frozen account, ``LoginOtpRequired`` / ``LoginOtpInvalid`` (401) for the
    right password without the code or with a wrong one (a failed login),
    ``LoginRateLimited`` (429, ``details.retry_after``) while the login or the address is
    locked out after failures (see ``login_lock_check``) and ``TwoFactorUnavailable`` (503)
    when the account's code cannot be checked safely (the cache is down).

    Not atomic on purpose: the attempt's login-history row must outlive a refusal.
    """
    try:
        user = authenticate(request, username=login, password=password, otp_code=otp_code)
    except FrozenAccountLogin as exc:
        raise AccountFrozen() from exc
    except OtpRequiredLogin as exc:
        raise LoginOtpRequired(details={"field": "otp_code"}) from exc
    except OtpInvalidLogin as exc:
        raise LoginOtpInvalid(details={"field": "otp_code"}) from exc
    except LoginLocked as exc:
        raise LoginRateLimited(exc.messages[0], details={"retry_after": exc.retry_after}) from exc
    except LoginUnavailable as exc:
        raise TwoFactorUnavailable() from exc
    if user is None:
        raise InvalidCredentials()
    with transaction.atomic():
        update_last_login(None, user)
        return auth_tokens_issue(user=user, request=request)


def _outstanding_token_locked(raw_token: str) -> tuple[RefreshToken, OutstandingToken]:
    jwt_settings = _jwt_settings()
    try:
        refresh = RefreshToken(raw_token)
    except TokenError as exc:
        raise InvalidToken() from exc
    # The row lock serialises two refreshes racing with one token: only one rotates it.
    outstanding = (
        OutstandingToken.objects.select_for_update(of=("self",))
        .order_by()
        .filter(jti=refresh[jwt_settings.JTI_CLAIM])
        .first()
    )
    if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
        raise InvalidToken()
    return refresh, outstanding


@transaction.atomic
def auth_token_refresh(*, refresh_token: str, request: HttpRequest | None = None) -> dict[str, Any]:
    """Rotate a refresh token: blacklist it and return a new pair of the same family.

    Locks the token's ``OutstandingToken`` row. Raises ``InvalidToken`` (401) for a token
    that is malformed, expired, already used or revoked, whose family (session) was ended,
    or whose user is gone or inactive, and ``AccountFrozen`` (403) while the user is frozen
    (the token stays usable after an unfreeze). A token issued before families existed
    starts one.
    """
    refresh, outstanding = _outstanding_token_locked(refresh_token)
    user = User.objects.filter(
        pk=refresh.get(_jwt_settings().USER_ID_CLAIM), is_active=True
    ).first()
    if user is None:
        raise InvalidToken()
    if user.is_frozen:
        raise AccountFrozen()
    family_id = refresh.get(SESSION_CLAIM)
    auth_session = None  # a token from before families: auth_tokens_issue starts one
    if family_id is not None:
        auth_session = (
            AuthSession.objects.select_for_update()
            .filter(pk=family_id, user=user, revoked_at__isnull=True)
            .first()
        )
        if auth_session is None:
            raise InvalidToken()
        ip, _user_agent = sessions.request_client(request)
        auth_session.last_used_at = timezone.now()
        auth_session.expires_at = _refresh_expiry()
        auth_session.ip = ip or auth_session.ip
        auth_session.save(update_fields=["last_used_at", "expires_at", "ip"])
    BlacklistedToken.objects.create(token=outstanding)
    return auth_tokens_issue(user=user, auth_session=auth_session, request=request)


@transaction.atomic
def auth_logout(*, refresh_token: str, user: User | None = None) -> None:
    """Revoke a refresh token (blacklist it) and end its family: the family's access tokens
    are refused from the next request on.

    When the caller is authenticated the token must be theirs (``TokenOwnerMismatch``, 403).
    Raises ``InvalidToken`` (401) for a token that is malformed, expired or already revoked.
    """
    refresh, outstanding = _outstanding_token_locked(refresh_token)
    owner_id = refresh.get(_jwt_settings().USER_ID_CLAIM)
    if user is not None and str(owner_id) != str(user.pk):
        raise TokenOwnerMismatch()
    BlacklistedToken.objects.create(token=outstanding)
    family_id = refresh.get(SESSION_CLAIM)
    if family_id is not None:
        AuthSession.objects.filter(pk=family_id, user_id=owner_id, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_reason="logout"
        )


@transaction.atomic
def token_flush_expired() -> int:
    """Delete expired outstanding refresh tokens (their blacklist rows go with them).

    Returns how many outstanding tokens were deleted. Safe to run at any time: an expired
    token is refused by its signature check whether or not its row exists.
    """
    _deleted, per_model = OutstandingToken.objects.filter(expires_at__lte=timezone.now()).delete()
    return per_model.get(OutstandingToken._meta.label, 0)


DEMO_USERS = (
    # (email, username, full name, password, is operator)
    ("admin@example.com", "admin", "Demo Operator", "admin-demo-pass", True),
    ("alice@example.com", "alice", "Alice Demo", "alice-demo-pass", False),
    ("bob@example.com", "bob", "Bob Demo", "bob-demo-pass", False),
)


@transaction.atomic
def demo_users_seed() -> list[str]:
    """Create the demo accounts when missing (idempotent; existing ones are left untouched).

    For local trials only (``make run``): the passwords are public, in README.md.
    Returns one line per account for the command's output.
    """
    lines = []
    for email, username, full_name, password, is_operator in DEMO_USERS:
        user = User.objects.filter(email=email).first()
        if user is None:
            create = User.objects.create_superuser if is_operator else User.objects.create_user
            user = create(
                email=email,
                username=username,
                password=password,
                full_name=full_name,
                is_verified=True,
            )
            lines.append(f"created {'operator' if is_operator else 'user'} {email} / {password}")
        else:
            lines.append(f"exists  {email}")
    return lines


# --- Operator console (issue 8) ------------------------------------------------------------


@transaction.atomic
def user_freeze(*, user_id: int, actor: User, reason: str) -> User:
    """Freeze an account: from now on it cannot log in, refresh or use its tokens, trade or
    withdraw; its live orders get cancel commands (the matcher cancels them and releases
    their funds, in halted markets once trading resumes).

    Locks the user row, then runs the freeze hooks other apps registered
    (``accounts.hooks``): trading's queues the cancels, locking the orders' rows.
    Raises ``ValidationError`` without a reason, ``AccountStateConflict`` (409) when the
    account is already frozen, is the exchange's own (fee) account or is the actor's.
    """
    reason = reason_require(reason)
    user = User.objects.select_for_update().get(pk=user_id)
    if user.is_frozen:
        raise AccountStateConflict("The account is already frozen.")
    if user.is_system:
        raise AccountStateConflict("The exchange's own accounts cannot be frozen.")
    if user.pk == actor.pk:
        raise AccountStateConflict("You cannot freeze your own account.")
    user.frozen_at = timezone.now()
    user.frozen_reason = reason[:500]
    user.save(update_fields=["frozen_at", "frozen_reason", "updated_at"])
    operator_action_record(
        actor=actor,
        action="user_freeze",
        target=user,
        reason=reason,
        details=freeze_hooks_run(user=user),
    )
    return user


@transaction.atomic
def user_unfreeze(*, user_id: int, actor: User, reason: str) -> User:
    """Lift a freeze: logins, tokens, trading and withdrawals work again. Orders cancelled
    by the freeze stay cancelled. Locks the user row. Raises ``ValidationError`` without a
    reason and ``AccountStateConflict`` (409) when the account is not frozen."""
    reason = reason_require(reason)
    user = User.objects.select_for_update().get(pk=user_id)
    if not user.is_frozen:
        raise AccountStateConflict("The account is not frozen.")
    frozen = {"frozen_at": user.frozen_at.isoformat(), "frozen_reason": user.frozen_reason}
    user.frozen_at = None
    user.frozen_reason = ""
    user.save(update_fields=["frozen_at", "frozen_reason", "updated_at"])
    operator_action_record(
        actor=actor, action="user_unfreeze", target=user, reason=reason, details=frozen
    )
    return user


# --- API keys (issue 10) -----------------------------------------------------------------

API_KEY_PERMISSIONS = ("read", "trade")
API_KEYS_PER_USER = 30
API_KEY_IP_ALLOWLIST_MAX = 30
API_KEY_LENGTH = 64
API_KEY_ALPHABET = string.ascii_letters + string.digits
# A key's last use is written at most this often: not one UPDATE per signed request.
API_KEY_TOUCH_INTERVAL = timedelta(seconds=60)


def _random_token(length: int = API_KEY_LENGTH) -> str:
    return "".join(secrets.choice(API_KEY_ALPHABET) for _ in range(length))


def api_key_ip_allowlist_normalize(entries) -> list[str]:
    """Addresses and networks in canonical form (``10.0.0.0/8``, ``2001:db8::1``).

    Raises Django's ``ValidationError`` keyed by ``ip_allowlist`` for anything else.
    """
    if entries is None:
        return []
    if not isinstance(entries, list | tuple) or len(entries) > API_KEY_IP_ALLOWLIST_MAX:
        raise ValidationError(
            {"ip_allowlist": [f"Give a list of at most {API_KEY_IP_ALLOWLIST_MAX} entries."]}
        )
    normalized = []
    for entry in entries:
        try:
            network = ipaddress.ip_network(str(entry).strip(), strict=False)
        except ValueError as exc:
            raise ValidationError(
                {"ip_allowlist": [f"{entry!r} is not an IP address or network."]}
            ) from exc
        text = str(network.network_address) if network.num_addresses == 1 else str(network)
        if text not in normalized:
            normalized.append(text)
    return normalized


@transaction.atomic
def api_key_create(
    *,
    user: User,
    label: str,
    permissions: list[str],
    ip_allowlist: list[str] | None = None,
    otp_code: str | None = None,
    ip: str | None = None,
) -> tuple[ApiKey, str]:
    """Issue an API key; returns (key, secret). The secret is shown to the user once and
    kept only encrypted (``accounts.crypto``).

    Locks the user's row so two concurrent creations cannot pass the per-user limit, then
    the user's two-factor device. Raises ``AccountFrozen`` (403), ``ApiKeyLimit`` (422)
    beyond ``API_KEYS_PER_USER`` active keys, ``ValidationError`` for unknown permissions or
    a bad allow-list, and with two-factor authentication on ``OtpRequired`` /
    ``OtpInvalid`` (403) or ``LoginRateLimited`` (429) unless ``otp_code`` is a current code
    (see ``accounts.twofactor.two_factor_require``; ``ip`` is the client's, for its lockout).
    """
    User.objects.select_for_update().filter(pk=user.pk).first()
    if getattr(user, "is_frozen", False):
        raise AccountFrozen()
    unknown = sorted(set(permissions) - set(API_KEY_PERMISSIONS))
    if unknown or not permissions:
        raise ValidationError(
            {"permissions": [f"Choose from {', '.join(API_KEY_PERMISSIONS)} (at least one)."]}
        )
    allowlist = api_key_ip_allowlist_normalize(ip_allowlist)
    if ApiKey.objects.filter(user=user, revoked_at__isnull=True).count() >= API_KEYS_PER_USER:
        raise ApiKeyLimit(details={"limit": API_KEYS_PER_USER})
    two_factor_require(user=user, otp_code=otp_code, ip=ip)
    secret = _random_token()
    api_key = ApiKey.objects.create(
        user=user,
        label=label.strip(),
        key=_random_token(),
        secret_encrypted=secret_encrypt(secret),
        can_read="read" in permissions,
        can_trade="trade" in permissions,
        ip_allowlist=allowlist,
    )
    notify_api_key_created(user=user, api_key=api_key, ip=ip)
    return api_key, secret


@transaction.atomic
def api_key_revoke(*, user: User, key_id: int) -> ApiKey:
    """Revoke one of the user's keys: it stops working at once (the next request fails).

    Raises ``ApiKeyNotFound`` (404) for another user's key, an unknown or an already
    revoked one. Locks the key's row.
    """
    api_key = (
        ApiKey.objects.select_for_update()
        .filter(pk=key_id, user=user, revoked_at__isnull=True)
        .first()
    )
    if api_key is None:
        raise ApiKeyNotFound(details={"id": key_id})
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    return api_key


def _ip_allowed(api_key: ApiKey, ip: str | None) -> bool:
    if not api_key.ip_allowlist:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    for entry in api_key.ip_allowlist:
        network = ipaddress.ip_network(entry, strict=False)
        if address.version == network.version and address in network:
            return True
    return False


def api_key_identify(*, key: str, ip: str | None) -> ApiKey:
    """The active key ``key`` of an owner who may use it, called from an allowed address,
    with its ``user`` loaded: what a request that needs a key but no signature checks
    (Binance's ``USER_STREAM`` calls). Writes nothing. Raises ``ApiKeyInvalid`` (unknown or
    revoked key, frozen or deactivated owner) and ``ApiKeyIpNotAllowed``."""
    api_key = ApiKey.objects.select_related("user").filter(key=key).first()
    if api_key is None or not api_key.is_active:
        raise ApiKeyInvalid()
    owner = api_key.user
    if not owner.is_active or owner.is_frozen or owner.is_system:
        raise ApiKeyInvalid()
    if not _ip_allowed(api_key, ip):
        raise ApiKeyIpNotAllowed()
    return api_key


def api_key_authenticate(*, key: str, payload: bytes, signature: str, ip: str | None) -> ApiKey:
    """Check a signed request: the key is active, its owner may use it, the request comes
    from an allowed address, and ``signature`` is the lowercase hex HMAC-SHA256 of
    ``payload`` with the key's secret. Returns the key with its ``user`` loaded.

    Writes nothing (see ``api_key_touch``). Raises ``ApiKeyInvalid`` (unknown or revoked key,
    frozen or deactivated owner), ``ApiKeyIpNotAllowed`` and ``ApiSignatureInvalid``.
    """
    api_key = api_key_identify(key=key, ip=ip)
    secret = secret_decrypt(api_key.secret_encrypted)
    if secret is None:
        # Encrypted under a key no longer configured: it can never verify again.
        raise ApiKeyInvalid()
    expected = hmac.new(secret.encode(), payload, "sha256").hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        raise ApiSignatureInvalid()
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record that the key was just used; at most once per ``API_KEY_TOUCH_INTERVAL``.

    One conditional UPDATE (no lock held across the request), skipped entirely while the
    loaded row shows a recent use.
    """
    now = timezone.now()
    stale_before = now - API_KEY_TOUCH_INTERVAL
    if api_key.last_used_at is not None and api_key.last_used_at > stale_before:
        return
    ApiKey.objects.filter(pk=api_key.pk).exclude(last_used_at__gt=stale_before).update(
        last_used_at=now
    )
    api_key.last_used_at = now
