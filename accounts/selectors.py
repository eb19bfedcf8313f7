from django.db.models import Q

from accounts.models import ApiKey, User, normalize_email


def user_get_by_login(*, login: str) -> User | None:
    """The account whose email or username is ``login`` (both case-insensitive), or None."""
    login = login.strip()
    return User.objects.filter(Q(email=normalize_email(login)) | Q(username__iexact=login)).first()


def api_key_list_for_user(*, user: User):
    """The user's keys that still work, newest first (revoked ones are not shown)."""
    return ApiKey.objects.filter(user=user, revoked_at__isnull=True).order_by("-id")
