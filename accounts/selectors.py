from django.db.models import Q
from django.utils import timezone

from accounts.models import (
    ApiKey,
    AuthSession,
    LoginEvent,
    RecoveryCode,
    TwoFactorDevice,
    User,
    normalize_email,
)


def user_get_by_login(*, login: str) -> User | None:
    """The account whose email or username is ``login`` (both case-insensitive), or None."""
    login = login.strip()
    return User.objects.filter(Q(email=normalize_email(login)) | Q(username__iexact=login)).first()


def api_key_list_for_user(*, user: User):
    """The user's keys that still work, newest first (revoked ones are not shown)."""
    return ApiKey.objects.filter(user=user, revoked_at__isnull=True).order_by("-id")


def two_factor_is_enabled(*, user: User) -> bool:
    return TwoFactorDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


def two_factor_status(*, user: User) -> dict:
    """Whether two-factor authentication is on (or an enrolment pending), since when, and how
    many unused recovery codes are left."""
    device = TwoFactorDevice.objects.filter(user=user).first()
    enabled = device is not None and device.is_enabled
    return {
        "enabled": enabled,
        "pending": device is not None and not enabled,
        "enabled_at": device.confirmed_at if enabled else None,
        "recovery_codes_left": RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()
        if enabled
        else 0,
    }


def auth_session_list_for_user(*, user: User):
    """The user's live sessions (not revoked, not expired), most recently used first."""
    return (
        AuthSession.objects.filter(user=user, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .order_by("-last_used_at", "-id")
    )


def login_history_for_user(*, user: User):
    """The user's login attempts, newest first (failed ones included)."""
    return LoginEvent.objects.filter(user=user).order_by("-id")
