"""Everything that writes accounts: registration, login tokens, profile changes."""

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

from accounts.exceptions import (
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    TokenOwnerMismatch,
    UsernameTaken,
)
from accounts.models import User, normalize_email


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
    """Create an account.

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
            return User.objects.create_user(
                email=email, username=username, password=password, full_name=full_name
            )
    except IntegrityError:
        _raise_if_taken(email=email, username=username)
        raise


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


def auth_tokens_issue(*, user: User) -> dict[str, Any]:
    """A fresh access/refresh pair for ``user``; the refresh token is recorded as outstanding."""
    jwt_settings = _jwt_settings()
    refresh = RefreshToken.for_user(user)
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


@transaction.atomic
def auth_login(*, login: str, password: str, request: HttpRequest | None = None) -> dict:
    """Check a login (email or username) and password; return a token pair.

    Raises ``InvalidCredentials`` (401) with one message for an unknown login, a wrong
    password and a deactivated account alike.
    """
    user = authenticate(request, username=login, password=password)
    if user is None:
        raise InvalidCredentials()
    update_last_login(None, user)
    return auth_tokens_issue(user=user)


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
def auth_token_refresh(*, refresh_token: str) -> dict[str, Any]:
    """Rotate a refresh token: blacklist it and return a new pair.

    Locks the token's ``OutstandingToken`` row. Raises ``InvalidToken`` (401) for a token
    that is malformed, expired, already used or revoked, or whose user is gone or inactive.
    """
    refresh, outstanding = _outstanding_token_locked(refresh_token)
    user = User.objects.filter(
        pk=refresh.get(_jwt_settings().USER_ID_CLAIM), is_active=True
    ).first()
    if user is None:
        raise InvalidToken()
    BlacklistedToken.objects.create(token=outstanding)
    return auth_tokens_issue(user=user)


@transaction.atomic
def auth_logout(*, refresh_token: str, user: User | None = None) -> None:
    """Revoke a refresh token (blacklist it).

    When the caller is authenticated the token must be theirs (``TokenOwnerMismatch``, 403).
    Raises ``InvalidToken`` (401) for a token that is malformed, expired or already revoked.
    Access tokens already issued stay valid until they expire (they are short-lived).
    """
    refresh, outstanding = _outstanding_token_locked(refresh_token)
    if user is not None and str(refresh.get(_jwt_settings().USER_ID_CLAIM)) != str(user.pk):
        raise TokenOwnerMismatch()
    BlacklistedToken.objects.create(token=outstanding)


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
